package remote

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// TestConcurrentSends sends requests from many goroutines at once, where
// a sender leaves the flush to the one behind it: every request reaches
// the server and is answered (a frame left in the buffer would leave its
// call waiting for the two-minute mutation timeout).
func TestConcurrentSends(t *testing.T) {
	const senders, each = 32, 100
	s := startFakeServer(t, true, 0)
	c := openFake(t, s.addr(), 5*time.Second)
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				// Names of different lengths: frames of different sizes.
				name := strings.Repeat("t", 1+(g*each+i)%300)
				if _, err := c.CreateTopic(t.Context(), metastore.TopicSpec{Name: name}); !errors.Is(err, metastore.ErrTopicExists) {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("calls still waiting after 30 s: %d of %d requests reached the server", s.requests.Load(), senders*each)
	}
	close(errs)
	for err := range errs {
		t.Fatalf("CreateTopic: %v, want ErrTopicExists", err)
	}
	if n := s.requests.Load(); n != senders*each {
		t.Errorf("server read %d requests, want %d", n, senders*each)
	}
}

// TestSendTooLarge refuses a request over the frame limit before it is
// sent, naming the op; the connection stays usable.
func TestSendTooLarge(t *testing.T) {
	s := startFakeServer(t, true, 0)
	c := openFake(t, s.addr(), 5*time.Second)
	_, err := c.CreateTopic(t.Context(), metastore.TopicSpec{Name: strings.Repeat("x", MaxFrame)})
	if !errors.Is(err, ErrFrameTooLarge) || !strings.Contains(err.Error(), "CreateTopic") {
		t.Fatalf("CreateTopic of a %d-byte name: %v, want ErrFrameTooLarge naming the op", MaxFrame, err)
	}
	if _, err := c.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t"}); !errors.Is(err, metastore.ErrTopicExists) {
		t.Fatalf("CreateTopic after a refused one: %v", err)
	}
	if n := s.requests.Load(); n != 1 {
		t.Errorf("server read %d requests, want 1", n)
	}
}
