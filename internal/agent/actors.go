package agent

import (
	"log/slog"
	"sync"
	"time"
)

// actors are the agent's running parts, in the order they started: the
// Kafka listener, the peer listener, membership, the read cache ring, the
// writer, the commit watch, the group coordinator, the admin server, the
// heartbeats, the jobs and the accept loop. Each is registered with what
// stops it as soon as it has started, so that a failed start stops
// exactly what had started, and Close stops everything in the reverse
// order. The lame-duck drain (Agent.drain) stops some of them earlier, by
// name and in its own order; each stop runs once.
type actors struct {
	log *slog.Logger

	mu      sync.Mutex
	started []*actor
}

type actor struct {
	name string
	once sync.Once
	stop func()
}

// add registers a started part and what stops it.
func (as *actors) add(name string, stop func()) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.started = append(as.started, &actor{name: name, stop: stop})
}

// stop stops the named part now, if it started and has not been stopped.
func (as *actors) stop(name string) {
	as.mu.Lock()
	var found *actor
	for _, a := range as.started {
		if a.name == name {
			found = a
		}
	}
	as.mu.Unlock()
	if found != nil {
		as.run(found)
	}
}

// stopAll stops every part still running, last started first.
func (as *actors) stopAll() {
	as.mu.Lock()
	started := as.started
	as.mu.Unlock()
	for i := len(started) - 1; i >= 0; i-- {
		as.run(started[i])
	}
}

func (as *actors) run(a *actor) {
	a.once.Do(func() {
		t0 := time.Now()
		a.stop()
		as.log.Debug("stopped", "part", a.name, "took", time.Since(t0))
	})
}
