package main

import (
	"bytes"
	"context"
	"regexp"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for a command writing while a test
// reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runningPlayground is a `floe playground` run in-process by a test.
type runningPlayground struct {
	Bootstrap, Admin, Dir string
	Out                   *lockedBuffer
	stop                  func() error
}

var (
	bootstrapLine = regexp.MustCompile(`bootstrap server:\s+(\S+)`)
	adminLine     = regexp.MustCompile(`metrics, health:\s+https?://([^/\s]+)/metrics`)
	dirLine       = regexp.MustCompile(`data directory:\s+(\S+)`)
)

// startPlayground runs `floe playground` with args (on free loopback
// ports unless args say otherwise) until the test ends, and returns once
// it has printed its addresses.
func startPlayground(t *testing.T, args ...string) *runningPlayground {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	full := append([]string{"playground", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--linger", "20ms"}, args...)
	done := make(chan error, 1)
	go func() { done <- run1(ctx, full, out, errOut) }()
	p := &runningPlayground{Out: out}
	var once sync.Once
	var stopErr error
	p.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("playground did not stop within 30s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("playground: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := adminLine.FindStringSubmatch(out.String()); m != nil {
			p.Admin = m[1]
			p.Bootstrap = bootstrapLine.FindStringSubmatch(out.String())[1]
			p.Dir = dirLine.FindStringSubmatch(out.String())[1]
			return p
		}
		select {
		case err := <-done:
			t.Fatalf("playground exited: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("playground printed no addresses within 30s:\n%s\n%s", out.String(), errOut.String())
		}
	}
}
