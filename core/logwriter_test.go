package core

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
	n  int // writes
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return s.b.Write(p)
}

func (s *syncBuf) get() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String(), s.n
}

func TestLogWriterBatchesAndFlushes(t *testing.T) {
	out := &syncBuf{}
	l := newLogWriter(out, time.Hour) // only Close or a full buffer flushes
	for range 100 {
		l.Write([]byte("line\n"))
	}
	if s, _ := out.get(); s != "" {
		t.Fatal("lines written before a flush")
	}
	l.Close()
	s, writes := out.get()
	if len(s) != 500 || writes != 1 {
		t.Errorf("after Close: %d bytes in %d writes, want 500 in 1", len(s), writes)
	}
	l.Write([]byte("after\n"))
	if s, _ := out.get(); len(s) != 506 {
		t.Error("a write after Close was held back")
	}
	l.Close() // twice is fine
	var nilWriter *logWriter
	nilWriter.Close()
}

func TestLogWriterFlushesOnTimer(t *testing.T) {
	out := &syncBuf{}
	l := newLogWriter(out, 5*time.Millisecond)
	defer l.Close()
	l.Write([]byte("tick\n"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s, _ := out.get(); s == "tick\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the timer never flushed")
		}
		time.Sleep(time.Millisecond)
	}
}
