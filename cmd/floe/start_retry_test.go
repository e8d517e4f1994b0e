package main

import (
	"context"
	"errors"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// TestStartRetry: a step that fails as unreachable is tried again until
// it succeeds or the deadline would pass; any other error ends it at once.
func TestStartRetry(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	r := startRetry{ctx: t.Context(), log: log, deadline: time.Now().Add(10 * time.Second)}
	tries := 0
	err := r.do("step", metastore.Unreachable, func() error {
		if tries++; tries < 3 {
			return syscall.ECONNREFUSED
		}
		return nil
	})
	if err != nil || tries != 3 {
		t.Fatalf("succeeded on try 3: err %v after %d tries", err, tries)
	}

	refusal := errors.New("wrong key")
	tries = 0
	if err := r.do("step", metastore.Unreachable, func() error { tries++; return refusal }); err != refusal || tries != 1 {
		t.Fatalf("a refusal: err %v after %d tries, want it after 1", err, tries)
	}

	short := startRetry{ctx: t.Context(), log: log, deadline: time.Now().Add(time.Second)}
	tries = 0
	start := time.Now()
	err = short.do("step", metastore.Unreachable, func() error { tries++; return syscall.ECONNREFUSED })
	if !errors.Is(err, syscall.ECONNREFUSED) || tries < 2 || time.Since(start) > 3*time.Second {
		t.Fatalf("past the deadline: err %v after %d tries in %v", err, tries, time.Since(start))
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	cancelled := startRetry{ctx: ctx, log: log, deadline: time.Now().Add(time.Minute)}
	tries = 0
	if err := cancelled.do("step", metastore.Unreachable, func() error { tries++; return syscall.ECONNREFUSED }); err == nil || tries != 1 {
		t.Fatalf("a cancelled start: err %v after %d tries", err, tries)
	}
}
