// Package crash kills a real `floe playground` process while idempotent
// franz-go producers write to it at full speed, restarts it on the same data
// directory, and checks the promise the agent makes: a record that was
// acknowledged is in the log, exactly once, at the offset its
// acknowledgement reported; nothing that was served comes from an object
// the metadata store does not reference.
//
// TestMain builds the floe binary once; the tests run it as a subprocess,
// so SIGKILL really ends the process wherever it happens to be: in the
// linger, in a PUT, between a PUT and its metadata commit, or between the
// commit and the replies. TestKill9Secure and
// TestGracefulShutdownLosesNothingSecure do the same with a SASL_SSL
// listener, SCRAM users and ACLs.
package crash

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil"
)

var (
	topics     = []string{"crash-a", "crash-b"}
	partitions = int32(4)
	// producersPerRound are the concurrent idempotent clients of a round;
	// each writes to every partition with its own sequence.
	producersPerRound = 2
)

// floeBin is the floe binary TestMain builds.
var floeBin string

func TestMain(m *testing.M) { testutil.RunWithFloeBinary(m, "crash", &floeBin) }

// TestKill9 runs rounds of: produce at full speed, SIGKILL after a random
// 0.3–1.5 s, restart on the same data directory and port, and read every
// partition from 0 to check the log. After the last round the playground
// must stop gracefully, and no record it served may come from an orphaned
// object.
//
// The rounds differ in where the kill lands and in what the producers do
// next. A kill at a random moment mostly hits the linger, sometimes a PUT
// or the gap between a PUT and its commit (an orphan); a kill at the next
// metadata commit hits batches that are stored but not yet acknowledged.
// Producers that live on reconnect to the restarted playground and retry
// what they had in flight, which idempotence must not duplicate; abandoned
// producers leave records that may or may not be in the log, never twice.
func TestKill9(t *testing.T) { kill9(t, false) }

// TestKill9Secure is TestKill9 with security on: the playground listens
// for SASL_SSL only (a certificate from a test CA) and authorizes with
// ACLs; the producers log in with SCRAM-SHA-512 as a user granted only
// WRITE on the topics, and reconnect and log in again to every restarted
// playground; the log is read back as a user granted only READ.
func TestKill9Secure(t *testing.T) { kill9(t, true) }

func kill9(t *testing.T, secure bool) {
	rounds := []struct {
		afterCommit bool // kill at the first commit after the delay
		abandon     bool // close the producers instead of letting them retry
	}{
		{},
		{afterCommit: true},
		{abandon: true},
		{afterCommit: true, abandon: true},
		{afterCommit: true},
	}
	dataDir := t.TempDir()
	var sec *testutil.SecureKafka
	if secure {
		sec = newSecurity(t, dataDir)
	}
	led := newLedger()
	pg := startFresh(t, dataDir, sec, "round-0")
	createTopics(t, pg)
	if secure {
		refusedProduce(t, pg, consumerUser)
	}

	var retrying *producers // the previous round's producers, if they live on
	for round, plan := range rounds {
		if round > 0 {
			pg = restart(t, dataDir, pg, fmt.Sprintf("round-%d", round))
			if retrying != nil {
				retrying.finish(t)
			}
			led.logRound(t, round-1)
			verify(t, pg, led, fmt.Sprintf("after kill %d", round))
			if t.Failed() {
				return
			}
		}
		ps := startProducers(t, pg, round, led)
		delay := 300*time.Millisecond + rand.N(1200*time.Millisecond)
		time.Sleep(delay)
		how, kill := "at a random moment", pg.kill
		if plan.afterCommit {
			how, kill = "right after a metadata commit", pg.killAfterCommit
		}
		if err := kill(); err != nil {
			t.Fatal(err)
		}
		acked, sent := led.roundProgress(round)
		t.Logf("round %d: SIGKILL %s, %v in: %d records sent, %d acknowledged so far",
			round, how, delay.Round(time.Millisecond), sent, acked)
		ps.stop()
		retrying = ps
		if plan.abandon {
			ps.abandon(t)
			retrying = nil
		}
		orphans := inspectOrphans(t, dataDir)
		t.Logf("round %d: %d of %d objects orphaned after the kill", round, len(orphans.Orphans), orphans.Objects)
	}

	pg = restart(t, dataDir, pg, "final")
	if retrying != nil {
		retrying.finish(t)
	}
	led.logRound(t, len(rounds)-1)
	log := verify(t, pg, led, "final")
	if t.Failed() {
		return
	}
	pg.stopGracefully(t)
	checkObjects(t, dataDir, led, log)
}

// TestGracefulShutdownLosesNothing sends SIGTERM while producers write at
// full speed: the agent must drain and exit 0 within 10 s, and every record
// it acknowledged must be there after a restart.
func TestGracefulShutdownLosesNothing(t *testing.T) { gracefulShutdown(t, false) }

// TestGracefulShutdownLosesNothingSecure is the same over SASL_SSL with
// ACLs: draining ends reading differently on TLS connections (a read
// deadline instead of a half close) and must still answer what it read.
func TestGracefulShutdownLosesNothingSecure(t *testing.T) { gracefulShutdown(t, true) }

func gracefulShutdown(t *testing.T, secure bool) {
	dataDir := t.TempDir()
	var sec *testutil.SecureKafka
	if secure {
		sec = newSecurity(t, dataDir)
	}
	led := newLedger()
	pg := startFresh(t, dataDir, sec, "before-sigterm")
	createTopics(t, pg)

	ps := startProducers(t, pg, 0, led)
	delay := 300*time.Millisecond + rand.N(700*time.Millisecond)
	time.Sleep(delay)
	acked, sent := led.roundProgress(0)
	t.Logf("SIGTERM after %v: %d records sent, %d acknowledged so far", delay.Round(time.Millisecond), sent, acked)
	pg.stopGracefully(t)
	ps.stop()
	acked, sent = led.roundProgress(0)
	orphans := inspectOrphans(t, dataDir)
	t.Logf("after the drain: %d records sent, %d acknowledged; %d of %d objects orphaned",
		sent, acked, len(orphans.Orphans), orphans.Objects)

	pg = restart(t, dataDir, pg, "after-sigterm")
	ps.finish(t)
	led.logRound(t, 0)
	log := verify(t, pg, led, "after graceful restart")
	if t.Failed() {
		return
	}
	pg.stopGracefully(t)
	// A batch whose producer gave up on the connection it was sent on is
	// sent again, and if the first attempt was committed the retry is a
	// duplicate that the sequence checks drop: harmless with idempotence.
	// It happens when the draining agent closes a connection that still
	// holds unread requests (the client sees a reset), and after the
	// restart, when the agent registers under a new node id and the
	// client drops the old broker's connections. Shown, not asserted.
	if dups := checkObjects(t, dataDir, led, log); dups > 0 {
		t.Logf("note: %d batches were sent again after their first attempt was committed; the retries were dropped as duplicates", dups)
	}
}
