//go:build !race

// The race detector changes how much memory everything takes; the
// accounting test runs without it (as core/internal/ratelimit's
// allocation test does).

package plugin

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tinyModule is a minimal ABI v1 skill module, built byte by byte so a
// test can make many distinct ones that compile in microseconds: it
// declares pages of memory, and its skill answers status 0 with no output;
// id makes each module's bytes (and so its compiled code) its own.
func tinyModule(pages uint32, id uint32) []byte {
	leb := func(v uint32) []byte { return binary.AppendUvarint(nil, uint64(v)) }
	sleb := func(v int32) []byte { // signed LEB128
		var out []byte
		for {
			b := byte(v & 0x7f)
			v >>= 7
			if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
				return append(out, b)
			}
			out = append(out, b|0x80)
		}
	}
	section := func(id byte, body []byte) []byte {
		return append(append([]byte{id}, leb(uint32(len(body)))...), body...)
	}
	name := func(s string) []byte { return append(leb(uint32(len(s))), s...) }
	types := section(1, []byte{2, 0x60, 0, 1, 0x7f, 0x60, 1, 0x7f, 1, 0x7f}) // () -> i32, (i32) -> i32
	funcs := section(3, []byte{2, 0, 1})
	mem := section(5, append([]byte{1, 0}, leb(pages)...))
	exports := []byte{3}
	exports = append(append(exports, name("memory")...), 2, 0)
	exports = append(append(exports, name("portico_abi_version")...), 0, 0)
	exports = append(append(exports, name("portico_skill")...), 0, 1)
	exp := section(7, exports)
	// abi version: i32.const 65536; skill: i32.const id; drop; i32.const 0
	f0 := append(append([]byte{0, 0x41}, sleb(65536)...), 0x0b)
	f1 := append(append(append([]byte{0, 0x41}, sleb(int32(id))...), 0x1a, 0x41, 0), 0x0b)
	code := []byte{2}
	code = append(append(code, leb(uint32(len(f0)))...), f0...)
	code = append(append(code, leb(uint32(len(f1)))...), f1...)
	out := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range [][]byte{types, funcs, mem, exp, section(10, code)} {
		out = append(out, s...)
	}
	return out
}

// execMapped is the size of this process's anonymous executable mappings
// (Linux): compiled guest code.
func execMapped(t *testing.T) int64 {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps (%v)", err)
	}
	defer f.Close()
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 5 || !strings.HasPrefix(fields[1], "r-x") {
			continue
		}
		a, b, _ := strings.Cut(fields[0], "-")
		s, _ := strconv.ParseUint(a, 16, 64)
		e, _ := strconv.ParseUint(b, 16, 64)
		total += int64(e - s)
	}
	return total
}

// TestFiftyPluginsAccounted installs 50 distinct small plugins: the
// accounting says what each holds (at least its declared linear memory per
// warm instance, compiled code it has), grows by a bounded amount per
// plugin, and the code really goes when they are uninstalled.
func TestFiftyPluginsAccounted(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.m.d.InstallDir = filepath.Join(t.TempDir(), "plugins")
	c := cfg()
	c.Plugin.MinInstances = 1 // warm: the accounting of an instance is what is checked
	f.m.LoadAll(ctx, c)
	total := func() (code int64, linear uint64, instances int64) {
		for _, i := range f.m.List() {
			code += i.Memory.CompiledBytes
			linear += i.Memory.LinearMemoryBytes
			instances += i.Memory.Instances
		}
		return
	}
	code0, linear0, _ := total()
	exec0 := execMapped(t)
	const n, pages = 50, 3
	for i := range n {
		name := fmt.Sprintf("tiny%02d", i)
		manifest := fmt.Sprintf("name = %q\nversion = \"1.0.0\"\nkinds = [\"skill\"]\n[[skills]]\nname = %q\ndescription = \"answers nothing\"\n", name, name)
		info, err := f.m.Install(ctx, []byte(manifest), tinyModule(pages, uint32(i)))
		if err != nil || info.Status != Active {
			t.Fatalf("install %s: %+v %v", name, info, err)
		}
		if info.Memory.LinearMemoryBytes < pages*65536*uint64(info.Memory.Instances) || info.Memory.CompiledBytes <= 0 || info.Memory.Instances < 1 {
			t.Fatalf("%s accounts %+v: want at least %d bytes of linear memory per warm instance and compiled code", name, info.Memory, pages*65536)
		}
	}
	code1, linear1, inst1 := total()
	perCode, perLinear := (code1-code0)/n, (linear1-linear0)/n
	t.Logf("per plugin: %d bytes of compiled code, %d of linear memory (%d instances in all)", perCode, perLinear, inst1)
	// The bound of docs/plugins.md: a tiny module costs its pages and
	// well under a MiB of code.
	if perCode > 1<<20 || perLinear > pages*65536*2 {
		t.Errorf("per plugin: %d bytes of code, %d of linear memory: over the bound", perCode, perLinear)
	}
	for i := range n {
		if err := f.m.Uninstall(ctx, fmt.Sprintf("tiny%02d", i), true); err != nil {
			t.Fatal(err)
		}
	}
	if code2, linear2, _ := total(); code2 != code0 || linear2 != linear0 {
		t.Errorf("after uninstall: %d bytes of code and %d of linear memory accounted, %d and %d before", code2, linear2, code0, linear0)
	}
	// The process's executable memory comes back too: nothing leaked.
	// (wazero unmaps a closed module's code from a finalizer: after a GC.)
	deadline := time.Now().Add(5 * time.Second)
	for execMapped(t) > exec0+(code1-code0)/10 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	if e := execMapped(t); e > exec0+(code1-code0)/10 {
		t.Errorf("executable memory %d after uninstall, %d before (the plugins had %d)", e, exec0, code1-code0)
	}
}
