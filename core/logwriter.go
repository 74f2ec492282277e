package core

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logWriter buffers log output and flushes it every interval, when the
// buffer fills, and on Close, so a busy gateway makes a few large writes
// instead of one system call per log line (one per request, for the access
// log). A crash can lose at most one interval of logs.
type logWriter struct {
	mu     sync.Mutex
	out    io.Writer
	w      *bufio.Writer
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

func newLogWriter(out io.Writer, interval time.Duration) *logWriter {
	l := &logWriter{out: out, w: bufio.NewWriterSize(out, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				l.Flush()
			case <-l.stop:
				return
			}
		}
	}()
	return l
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.out.Write(p)
	}
	return l.w.Write(p)
}

// Flush writes out what is buffered.
func (l *logWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Flush()
}

// Close stops the flusher and flushes; later writes go straight through.
// It is a no-op on a nil logWriter (unbuffered logging).
func (l *logWriter) Close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.w.Flush()
	l.mu.Unlock()
	close(l.stop)
	<-l.done
}
