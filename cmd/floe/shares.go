package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/sharepart"
)

// registerShares adds the share-group (KIP-932) flags: the defaults of
// every share group, which a group overrides with its GROUP configs
// (docs/share-groups.md).
func registerShares(fs *flag.FlagSet, cfg *agent.Config) {
	fs.Func("share-auto-offset-reset", "where a share group starts reading a partition it has never read: latest, earliest or by_duration:PnDTnHnMn.nS (share.auto.offset.reset; default latest)", func(s string) error {
		r, err := sharepart.ParseReset(s)
		cfg.Shares.Reset = r
		return err
	})
	fs.Var(shareIsolation{&cfg.Shares.ReadCommitted}, "share-isolation-level", "which records share groups read: read_uncommitted (as Kafka) or read_committed, which skips aborted transactions and stops at the last stable offset (share.isolation.level)")
	fs.DurationVar(&cfg.Shares.Partition.LockDuration, "share-record-lock-duration", sharepart.DefaultLockDuration, "how long a share consumer holds a record it fetched before it is delivered to another (share.record.lock.duration.ms)")
	fs.IntVar(&cfg.Shares.Partition.DeliveryCountLimit, "share-delivery-count-limit", sharepart.DefaultDeliveryCountLimit, "deliveries of a record before a share group gives up on it and archives it (share.delivery.count.limit)")
	fs.IntVar(&cfg.Shares.Partition.MaxRecordLocks, "share-partition-max-record-locks", sharepart.DefaultMaxRecordLocks, "most records of one share partition in flight at once (group.share.partition.max.record.locks)")
	fs.DurationVar(&cfg.Shares.Group.SessionTimeout, "share-session-timeout", 45*time.Second, "a share group member is removed this long after its last heartbeat (group.share.session.timeout.ms)")
	fs.IntVar(&cfg.Shares.Group.MaxSize, "share-group-max-size", 200, "most members of a share group (group.share.max.size)")
}

// shareIsolation is --share-isolation-level: a flag.Value that prints
// its level, so that `floe config print` writes a value it reads back.
type shareIsolation struct{ readCommitted *bool }

func (v shareIsolation) String() string {
	if v.readCommitted != nil && *v.readCommitted {
		return "read_committed"
	}
	return "read_uncommitted"
}

func (v shareIsolation) Set(s string) error {
	switch s {
	case "read_uncommitted":
		*v.readCommitted = false
	case "read_committed":
		*v.readCommitted = true
	default:
		return fmt.Errorf("share isolation level %q: want read_uncommitted or read_committed", s)
	}
	return nil
}
