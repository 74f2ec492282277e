package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/porticohq/portico/core/internal/store"
	"github.com/porticohq/portico/internal/testtool"
)

// smallOpts keeps on-disk test stores light: Badger's defaults reserve tens
// of MiB per store.
var smallOpts = store.Options{MemTableBytes: 1 << 20, CacheBytes: 1 << 20}

// openMemory opens an in-memory store closed at the end of the test.
func openMemory(t testing.TB) *store.Badger {
	t.Helper()
	s, err := store.OpenMemory()
	if err != nil {
		t.Fatalf("OpenMemory: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openDisk opens a small on-disk store in dir, closed at the end of the test.
func openDisk(t testing.TB, dir string) *store.Badger {
	t.Helper()
	s, err := store.Open(dir, smallOpts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// backends are the two ways to open a Badger store.
var backends = []struct {
	name string
	open func(t testing.TB) *store.Badger
}{
	{"memory", openMemory},
	{"disk", func(t testing.TB) *store.Badger { return openDisk(t, t.TempDir()) }},
}

// stores are every backend of the KV surface; its behaviour must not
// differ between them.
var stores = []struct {
	name string
	open func(t testing.TB) store.Store
}{
	{"memory", func(t testing.TB) store.Store { return openMemory(t) }},
	{"disk", func(t testing.TB) store.Store { return openDisk(t, t.TempDir()) }},
	{"postgres", func(t testing.TB) store.Store { return openPostgres(t) }},
}

// openPostgres opens a store on a new database (skipping without one),
// closed at the end of the test.
func openPostgres(t testing.TB) *store.Postgres {
	t.Helper()
	s, err := store.OpenPostgres(context.Background(), store.PostgresOptions{URL: testtool.Postgres(t)})
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// forEachStore runs test on a new store of every backend, in parallel.
func forEachStore(t *testing.T, test func(t *testing.T, s store.Store)) {
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b.open(t))
		})
	}
}

func mustGet(t testing.TB, kv store.KV, key string) []byte {
	t.Helper()
	v, err := kv.Get(context.Background(), []byte(key))
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

func mustSet(t testing.TB, kv store.KV, key, value string, opts ...store.WriteOption) {
	t.Helper()
	if err := kv.Set(context.Background(), []byte(key), []byte(value), opts...); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func wantMissing(t testing.TB, kv store.KV, key string) {
	t.Helper()
	v, err := kv.Get(context.Background(), []byte(key))
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, v, err)
	}
}

// scanKeys returns the keys Scan visits, in visiting order.
func scanKeys(t testing.TB, kv store.KV, prefix string, opts store.ScanOptions) []string {
	t.Helper()
	var keys []string
	err := kv.Scan(context.Background(), []byte(prefix), opts, func(k, _ []byte) error {
		keys = append(keys, string(k))
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	return keys
}

func TestKVBasics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := b.open(t)
			// Every case uses its own keys, so the cases share one store.
			cases := []struct {
				name string
				run  func(t *testing.T)
			}{
				{"get missing is ErrNotFound", func(t *testing.T) {
					wantMissing(t, s, "missing")
				}},
				{"set then get", func(t *testing.T) {
					mustSet(t, s, "rt", "hello")
					if got := mustGet(t, s, "rt"); string(got) != "hello" {
						t.Fatalf("Get = %q, want hello", got)
					}
				}},
				{"empty value roundtrips", func(t *testing.T) {
					mustSet(t, s, "empty-value", "")
					if got := mustGet(t, s, "empty-value"); len(got) != 0 {
						t.Fatalf("Get = %q, want empty", got)
					}
				}},
				{"binary key and value", func(t *testing.T) {
					key, val := []byte{0, 1, 0xff, 0}, []byte{0xff, 0, 0xfe}
					if err := s.Set(ctx, key, val); err != nil {
						t.Fatal(err)
					}
					got, err := s.Get(ctx, key)
					if err != nil || !bytes.Equal(got, val) {
						t.Fatalf("Get = %x, %v; want %x", got, err, val)
					}
				}},
				{"returned value is a copy", func(t *testing.T) {
					mustSet(t, s, "copy-out", "original")
					got := mustGet(t, s, "copy-out")
					copy(got, "XXXXXXXX")
					if again := mustGet(t, s, "copy-out"); string(again) != "original" {
						t.Fatalf("after mutating a returned value, Get = %q", again)
					}
				}},
				{"stored value is a copy of the caller's buffer", func(t *testing.T) {
					buf := []byte("original")
					err := s.Update(ctx, func(tx store.Txn) error {
						if err := tx.Set([]byte("copy-in"), buf); err != nil {
							return err
						}
						copy(buf, "XXXXXXXX") // before the commit
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
					if got := mustGet(t, s, "copy-in"); string(got) != "original" {
						t.Fatalf("Get = %q; the store kept the caller's buffer", got)
					}
				}},
				{"overwrite", func(t *testing.T) {
					mustSet(t, s, "ow", "one")
					mustSet(t, s, "ow", "two")
					if got := mustGet(t, s, "ow"); string(got) != "two" {
						t.Fatalf("Get = %q, want two", got)
					}
				}},
				{"delete", func(t *testing.T) {
					mustSet(t, s, "del", "v")
					if err := s.Delete(ctx, []byte("del")); err != nil {
						t.Fatal(err)
					}
					wantMissing(t, s, "del")
				}},
				{"delete missing is nil", func(t *testing.T) {
					if err := s.Delete(ctx, []byte("never-set")); err != nil {
						t.Fatalf("Delete missing = %v, want nil", err)
					}
				}},
				{"set empty key is an error", func(t *testing.T) {
					if err := s.Set(ctx, nil, []byte("v")); err == nil {
						t.Fatal("Set(nil key) = nil, want error")
					}
					if err := s.Set(ctx, []byte{}, []byte("v")); err == nil {
						t.Fatal("Set(empty key) = nil, want error")
					}
					if hasKey(t, s, "") {
						t.Fatal("an empty key was stored")
					}
				}},
				{"delete empty key is an error", func(t *testing.T) {
					if err := s.Delete(ctx, nil); err == nil {
						t.Fatal("Delete(nil key) = nil, want error")
					}
				}},
				{"set with Sync", func(t *testing.T) {
					mustSet(t, s, "synced", "durable", store.Sync)
					if got := mustGet(t, s, "synced"); string(got) != "durable" {
						t.Fatalf("Get = %q, want durable", got)
					}
					if err := s.Delete(ctx, []byte("synced"), store.Sync); err != nil {
						t.Fatal(err)
					}
					wantMissing(t, s, "synced")
				}},
				{"cancelled context", func(t *testing.T) {
					cctx, cancel := context.WithCancel(ctx)
					cancel()
					if _, err := s.Get(cctx, []byte("rt")); !errors.Is(err, context.Canceled) {
						t.Fatalf("Get = %v, want context.Canceled", err)
					}
					if err := s.Set(cctx, []byte("cancelled"), []byte("v")); !errors.Is(err, context.Canceled) {
						t.Fatalf("Set = %v, want context.Canceled", err)
					}
					wantMissing(t, s, "cancelled")
				}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t)
				})
			}
		})
	}
}

// hasKey reports whether key is stored, by scanning.
func hasKey(t testing.TB, kv store.KV, key string) bool {
	return slices.Contains(scanKeys(t, kv, "", store.ScanOptions{KeysOnly: true}), key)
}

func TestScan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, s store.Store) {
		for _, k := range []string{"b/1", "a/2", "ab", "a/1", "a/3"} {
			mustSet(t, s, k, "v:"+k)
		}

		cases := []struct {
			name   string
			prefix string
			opts   store.ScanOptions
			want   []string
		}{
			{"prefix in key order", "a/", store.ScanOptions{}, []string{"a/1", "a/2", "a/3"}},
			{"prefix reverse", "a/", store.ScanOptions{Reverse: true}, []string{"a/3", "a/2", "a/1"}},
			{"other prefix", "b/", store.ScanOptions{}, []string{"b/1"}},
			{"other prefix reverse", "b/", store.ScanOptions{Reverse: true}, []string{"b/1"}},
			{"shorter prefix", "a", store.ScanOptions{}, []string{"a/1", "a/2", "a/3", "ab"}},
			{"exact key as prefix", "ab", store.ScanOptions{}, []string{"ab"}},
			{"no match", "c/", store.ScanOptions{}, nil},
			{"no match reverse", "c/", store.ScanOptions{Reverse: true}, nil},
			{"nil prefix is everything", "", store.ScanOptions{}, []string{"a/1", "a/2", "a/3", "ab", "b/1"}},
			{"nil prefix reverse", "", store.ScanOptions{Reverse: true}, []string{"b/1", "ab", "a/3", "a/2", "a/1"}},
			{"keys only", "a/", store.ScanOptions{KeysOnly: true}, []string{"a/1", "a/2", "a/3"}},
			{"keys only reverse", "a/", store.ScanOptions{KeysOnly: true, Reverse: true}, []string{"a/3", "a/2", "a/1"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				var keys []string
				err := s.Scan(ctx, []byte(c.prefix), c.opts, func(k, v []byte) error {
					keys = append(keys, string(k))
					if c.opts.KeysOnly {
						if v != nil {
							t.Errorf("KeysOnly: value of %q = %q, want nil", k, v)
						}
					} else if want := "v:" + string(k); string(v) != want {
						t.Errorf("value of %q = %q, want %q", k, v, want)
					}
					return nil
				})
				if err != nil {
					t.Fatalf("Scan: %v", err)
				}
				if !slices.Equal(keys, c.want) {
					t.Fatalf("keys = %q, want %q", keys, c.want)
				}
			})
		}
	})
}

func TestScanEarlyEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, s store.Store) {
		for i := range 5 {
			mustSet(t, s, fmt.Sprintf("k/%d", i), "v")
		}
		errBoom := errors.New("boom")

		cases := []struct {
			name      string
			ret       error // returned by fn on the second key
			opts      store.ScanOptions
			wantErr   error
			wantCalls int
		}{
			{"ErrStop ends without error", store.ErrStop, store.ScanOptions{}, nil, 2},
			{"ErrStop in reverse", store.ErrStop, store.ScanOptions{Reverse: true}, nil, 2},
			{"wrapped ErrStop", fmt.Errorf("done: %w", store.ErrStop), store.ScanOptions{}, nil, 2},
			{"other error is returned", errBoom, store.ScanOptions{}, errBoom, 2},
			{"other error keys only", errBoom, store.ScanOptions{KeysOnly: true}, errBoom, 2},
			{"nil visits all", nil, store.ScanOptions{}, nil, 5},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				calls := 0
				err := s.Scan(ctx, []byte("k/"), c.opts, func(_, _ []byte) error {
					calls++
					if calls == 2 {
						return c.ret
					}
					return nil
				})
				if c.wantErr == nil && err != nil {
					t.Fatalf("Scan = %v, want nil", err)
				}
				if c.wantErr != nil && !errors.Is(err, c.wantErr) {
					t.Fatalf("Scan = %v, want %v", err, c.wantErr)
				}
				if calls != c.wantCalls {
					t.Fatalf("fn called %d times, want %d", calls, c.wantCalls)
				}
			})
		}
	})
}

func TestScanCancelledContext(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s store.Store) {
		const n = 3000                         // more than the 1024 keys between context checks
		for from := 0; from < n; from += 500 { // one transaction of 3000 is too big for a small Badger
			err := s.Update(context.Background(), func(tx store.Txn) error {
				for i := from; i < from+500; i++ {
					if err := tx.Set(fmt.Appendf(nil, "c/%05d", i), []byte("v")); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}

		t.Run("cancelled before", func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			calls := 0
			err := s.Scan(ctx, []byte("c/"), store.ScanOptions{}, func(_, _ []byte) error { calls++; return nil })
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Scan = %v, want context.Canceled", err)
			}
			if calls != 0 {
				t.Fatalf("fn called %d times on a cancelled context", calls)
			}
		})
		t.Run("cancelled during", func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			err := s.Scan(ctx, []byte("c/"), store.ScanOptions{KeysOnly: true}, func(_, _ []byte) error {
				calls++
				cancel()
				return nil
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Scan = %v, want context.Canceled", err)
			}
			if calls >= n {
				t.Fatalf("fn called %d times: the scan ran to the end despite the cancel", calls)
			}
		})
	})
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, s store.Store) {
		errAbort := errors.New("abort")

		cases := []struct {
			name string
			run  func(t *testing.T)
		}{
			{"multi-key commit", func(t *testing.T) {
				mustSet(t, s, "mk/gone", "x")
				err := s.Update(ctx, func(tx store.Txn) error {
					if err := tx.Set([]byte("mk/a"), []byte("1")); err != nil {
						return err
					}
					if err := tx.Set([]byte("mk/b"), []byte("2")); err != nil {
						return err
					}
					return tx.Delete([]byte("mk/gone"))
				})
				if err != nil {
					t.Fatal(err)
				}
				if got := scanKeys(t, s, "mk/", store.ScanOptions{}); !slices.Equal(got, []string{"mk/a", "mk/b"}) {
					t.Fatalf("keys = %q, want [mk/a mk/b]", got)
				}
			}},
			{"error from fn writes nothing", func(t *testing.T) {
				mustSet(t, s, "ab/keep", "before")
				err := s.Update(ctx, func(tx store.Txn) error {
					for _, k := range []string{"ab/a", "ab/b"} {
						if err := tx.Set([]byte(k), []byte("1")); err != nil {
							return err
						}
					}
					if err := tx.Set([]byte("ab/keep"), []byte("after")); err != nil {
						return err
					}
					if err := tx.Delete([]byte("ab/keep")); err != nil {
						return err
					}
					return fmt.Errorf("wrapped: %w", errAbort)
				})
				if !errors.Is(err, errAbort) {
					t.Fatalf("Update = %v, want the error from fn", err)
				}
				wantMissing(t, s, "ab/a")
				wantMissing(t, s, "ab/b")
				if got := mustGet(t, s, "ab/keep"); string(got) != "before" {
					t.Fatalf("ab/keep = %q, want before", got)
				}
			}},
			{"txn sees its own writes", func(t *testing.T) {
				mustSet(t, s, "own/del", "x")
				err := s.Update(ctx, func(tx store.Txn) error {
					if _, err := tx.Get([]byte("own/k")); !errors.Is(err, store.ErrNotFound) {
						return fmt.Errorf("Get before Set = %v, want ErrNotFound", err)
					}
					if err := tx.Set([]byte("own/k"), []byte("mine")); err != nil {
						return err
					}
					v, err := tx.Get([]byte("own/k"))
					if err != nil || string(v) != "mine" {
						return fmt.Errorf("Get after Set = %q, %v; want mine", v, err)
					}
					if err := tx.Delete([]byte("own/del")); err != nil {
						return err
					}
					if _, err := tx.Get([]byte("own/del")); !errors.Is(err, store.ErrNotFound) {
						return fmt.Errorf("Get after Delete = %v, want ErrNotFound", err)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if got := mustGet(t, s, "own/k"); string(got) != "mine" {
					t.Fatalf("own/k = %q after commit", got)
				}
				wantMissing(t, s, "own/del")
			}},
			{"txn get returns a copy", func(t *testing.T) {
				mustSet(t, s, "tc/k", "original")
				err := s.Update(ctx, func(tx store.Txn) error {
					v, err := tx.Get([]byte("tc/k"))
					if err != nil {
						return err
					}
					copy(v, "XXXXXXXX")
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if got := mustGet(t, s, "tc/k"); string(got) != "original" {
					t.Fatalf("tc/k = %q", got)
				}
			}},
			{"txn empty key is an error", func(t *testing.T) {
				err := s.Update(ctx, func(tx store.Txn) error { return tx.Set(nil, []byte("v")) })
				if err == nil {
					t.Fatal("Update with tx.Set(nil) = nil, want error")
				}
				err = s.Update(ctx, func(tx store.Txn) error { return tx.Delete([]byte{}) })
				if err == nil {
					t.Fatal("Update with tx.Delete(empty) = nil, want error")
				}
			}},
			{"cancelled context does not run fn", func(t *testing.T) {
				cctx, cancel := context.WithCancel(ctx)
				cancel()
				ran := false
				err := s.Update(cctx, func(tx store.Txn) error { ran = true; return tx.Set([]byte("cc/k"), []byte("v")) })
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Update = %v, want context.Canceled", err)
				}
				if ran {
					t.Fatal("fn ran on a cancelled context")
				}
				wantMissing(t, s, "cc/k")
			}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				c.run(t)
			})
		}
	})
}

// TestUpdateConcurrentIncrements hammers one counter with read-modify-write
// transactions: without conflict detection and retry, increments get lost
// or surface as errors.
func TestUpdateConcurrentIncrements(t *testing.T) {
	t.Parallel()
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := b.open(t)
			ctx := context.Background()
			const workers, perWorker = 8, 50
			key := []byte("counter")

			var wg sync.WaitGroup
			errs := make(chan error, workers*perWorker)
			for range workers {
				wg.Go(func() {
					for range perWorker {
						err := s.Update(ctx, func(tx store.Txn) error {
							n := 0
							v, err := tx.Get(key)
							switch {
							case errors.Is(err, store.ErrNotFound):
							case err != nil:
								return err
							default:
								if n, err = strconv.Atoi(string(v)); err != nil {
									return err
								}
							}
							return tx.Set(key, []byte(strconv.Itoa(n+1)))
						})
						if err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("Update: %v", err)
			}
			if got := string(mustGet(t, s, string(key))); got != strconv.Itoa(workers*perWorker) {
				t.Fatalf("counter = %s, want %d", got, workers*perWorker)
			}
		})
	}
}

func TestPrefix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, s store.Store) {
		x := store.Prefix(s, "x/")
		y := store.Prefix(s, "y/")
		mustSet(t, s, "outside", "raw")
		mustSet(t, s, "x", "no slash")
		mustSet(t, x, "k", "from x")
		mustSet(t, y, "k", "from y")
		mustSet(t, x, "a/1", "x-a1")
		mustSet(t, x, "a/2", "x-a2")
		mustSet(t, x, "b/1", "x-b1")

		cases := []struct {
			name string
			run  func(t *testing.T)
		}{
			{"same key in two prefixes does not collide", func(t *testing.T) {
				if got := mustGet(t, x, "k"); string(got) != "from x" {
					t.Fatalf("x k = %q", got)
				}
				if got := mustGet(t, y, "k"); string(got) != "from y" {
					t.Fatalf("y k = %q", got)
				}
			}},
			{"writes land under the prefix in the raw store", func(t *testing.T) {
				if got := mustGet(t, s, "x/k"); string(got) != "from x" {
					t.Fatalf("raw x/k = %q", got)
				}
				if got := mustGet(t, s, "y/k"); string(got) != "from y" {
					t.Fatalf("raw y/k = %q", got)
				}
				wantMissing(t, s, "k")
			}},
			{"keys outside the prefix are invisible", func(t *testing.T) {
				wantMissing(t, x, "outside")
				wantMissing(t, x, "../outside")
				wantMissing(t, x, "y/k")
				wantMissing(t, y, "a/1")
			}},
			{"scan strips the prefix and sees only its namespace", func(t *testing.T) {
				got := scanKeys(t, x, "", store.ScanOptions{})
				want := []string{"a/1", "a/2", "b/1", "k"}
				if !slices.Equal(got, want) {
					t.Fatalf("x keys = %q, want %q", got, want)
				}
				if got := scanKeys(t, y, "", store.ScanOptions{Reverse: true}); !slices.Equal(got, []string{"k"}) {
					t.Fatalf("y keys = %q, want [k]", got)
				}
			}},
			{"scan with a sub-prefix", func(t *testing.T) {
				var got []string
				err := x.Scan(ctx, []byte("a/"), store.ScanOptions{Reverse: true}, func(k, v []byte) error {
					got = append(got, string(k)+"="+string(v))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if want := []string{"a/2=x-a2", "a/1=x-a1"}; !slices.Equal(got, want) {
					t.Fatalf("got %q, want %q", got, want)
				}
			}},
			// The cases below write, so they use prefixes of their own.
			{"update through the prefix", func(t *testing.T) {
				u := store.Prefix(s, "u/")
				mustSet(t, u, "k", "from u")
				err := u.Update(ctx, func(tx store.Txn) error {
					v, err := tx.Get([]byte("k"))
					if err != nil {
						return err
					}
					if err := tx.Set([]byte("u"), append(v, '!')); err != nil {
						return err
					}
					if _, err := tx.Get([]byte("outside")); !errors.Is(err, store.ErrNotFound) {
						return fmt.Errorf("txn Get(outside) = %v, want ErrNotFound", err)
					}
					return tx.Delete([]byte("gone"))
				})
				if err != nil {
					t.Fatal(err)
				}
				if got := mustGet(t, s, "u/u"); string(got) != "from u!" {
					t.Fatalf("raw u/u = %q", got)
				}
				wantMissing(t, s, "u")
				wantMissing(t, x, "u")
			}},
			{"delete through the prefix", func(t *testing.T) {
				dx, dy := store.Prefix(s, "dx/"), store.Prefix(s, "dy/")
				mustSet(t, dx, "del", "v")
				mustSet(t, dy, "del", "v")
				if err := dx.Delete(ctx, []byte("del")); err != nil {
					t.Fatal(err)
				}
				wantMissing(t, s, "dx/del")
				if got := mustGet(t, dy, "del"); string(got) != "v" {
					t.Fatalf("dy del = %q; deleting in dx touched dy", got)
				}
			}},
			{"nested prefixes", func(t *testing.T) {
				xa := store.Prefix(x, "a/")
				if got := scanKeys(t, xa, "", store.ScanOptions{}); !slices.Equal(got, []string{"1", "2"}) {
					t.Fatalf("x/a/ keys = %q, want [1 2]", got)
				}
				if got := mustGet(t, xa, "1"); string(got) != "x-a1" {
					t.Fatalf("x/a/1 = %q", got)
				}
			}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				c.run(t)
			})
		}
	})
}
