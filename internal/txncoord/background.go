package txncoord

import (
	"context"
	"errors"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/txn"
)

// run is the timeout loop: every AbortInterval it aborts the owned
// transactions past their timeout and deletes the records of idle ids.
func (c *Coordinator) run() {
	defer close(c.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(c.opts.AbortInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.Scan(ctx)
		}
	}
}

// Scan runs the timeout loop once: it aborts every owned transaction
// past its timeout (bumping its epoch, which fences its producer) and
// deletes the record of every owned id idle for longer than
// IDExpiration. The timeout loop calls it; tests may too.
func (c *Coordinator) Scan(ctx context.Context) {
	recs, err := c.store.ListTxns(ctx)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			c.log.Warn("transaction timeout scan", "err", err)
		}
		return
	}
	ongoing := 0
	for _, rec := range recs {
		if ctx.Err() != nil {
			return
		}
		if !c.Owns(rec.TransactionalID) {
			continue
		}
		now := c.opts.Now()
		switch {
		case txn.Expired(rec, now):
			c.expire(ctx, rec.TransactionalID)
		case rec.State == metastore.TxnOngoing:
			ongoing++
		case c.opts.IDExpiration > 0 && now.Sub(rec.UpdatedAt) >= c.opts.IDExpiration:
			c.expireID(ctx, rec.TransactionalID)
		}
	}
	c.metrics.ongoing.Set(float64(ongoing))
}

// expire aborts id's transaction if it is still past its timeout.
func (c *Coordinator) expire(ctx context.Context, id string) {
	c.serve(ctx, "timeout", id, true, func(cur metastore.Txn, found bool, in txn.Input) txn.Effect {
		return txn.Expire(cur, found, in)
	})
}

// expireID deletes id's record if it is still idle (transactional.id
// expiration): a producer coming back later is told
// INVALID_PRODUCER_ID_MAPPING, or starts afresh with InitProducerId.
func (c *Coordinator) expireID(ctx context.Context, id string) {
	release, err := c.acquire(ctx, id)
	if err != nil {
		return
	}
	defer release()
	rec, found, err := c.store.LoadTxn(ctx, id)
	if err != nil || !found || rec.State == metastore.TxnOngoing || c.opts.Now().Sub(rec.UpdatedAt) < c.opts.IDExpiration {
		return
	}
	switch err := c.store.DeleteTxn(ctx, id, rec.Version); {
	case err == nil:
		c.log.Info("transactional id expired", "transactional_id", id, "producer_id", rec.ProducerID, "idle", c.opts.Now().Sub(rec.UpdatedAt))
	case errors.Is(err, metastore.ErrTxnVersionConflict), errors.Is(err, metastore.ErrUnknownTxn):
	default:
		c.log.Warn("transactional id expiration", "transactional_id", id, "err", err)
	}
}
