package protocol

// AlterClientQuotas v0–v1 (KIP-546).
//
// Sets and removes quota values per entity (user, client-id, or both;
// a null name is the default). Entries are checked one by one: a bad
// entity or value (unknown type or key, a value that is not positive, a
// fractional byte rate) fails its entry with INVALID_REQUEST and an
// error message; the valid entries are applied together in one store
// transaction unless validate_only is set. The agent's quotas are read
// again at once, and every other agent's within its refresh interval.
//
// Byte-rate quotas are cluster-wide: each agent enforces its share;
// request_percentage is a share of each agent's time (see
// internal/quota). controller_mutation_rate is stored and described but
// not enforced from the store: the agent flag --controller-mutation-rate
// limits partition mutations instead.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(49, 0, 1, (*Handler).alterClientQuotas) }

func (h *Handler) alterClientQuotas(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.AlterClientQuotasRequest)
	resp := r.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	var changes []metastore.QuotaChange
	var valid []int // response entries of the changes
	alterable := h.allowedOnCluster(req, acl.AlterConfigs)
	for _, e := range r.Entries {
		re := kmsg.NewAlterClientQuotasResponseEntry()
		var c metastore.QuotaChange
		for _, p := range e.Entity {
			rp := kmsg.NewAlterClientQuotasResponseEntryEntity()
			rp.Type, rp.Name = p.Type, p.Name
			re.Entity = append(re.Entity, rp)
			c.Entity = append(c.Entity, metastore.QuotaEntityPart{Type: p.Type, Name: p.Name})
		}
		for _, op := range e.Ops {
			if op.Remove {
				c.Remove = append(c.Remove, op.Key)
				continue
			}
			if c.Set == nil {
				c.Set = map[string]float64{}
			}
			c.Set[op.Key] = op.Value
		}
		if !alterable {
			re.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		} else if err := metastore.ValidateQuotaChange(c); err != nil {
			re.ErrorCode, re.ErrorMessage = kerr.InvalidRequest.Code, errMessage(err)
		} else {
			changes = append(changes, c)
			valid = append(valid, len(resp.Entries))
		}
		resp.Entries = append(resp.Entries, re)
	}
	if r.ValidateOnly || len(changes) == 0 {
		return now(resp), nil
	}
	// Applied before Handle returns, so that a later request on this
	// connection sees the change.
	err := h.store.AlterClientQuotas(ctx, changes)
	if err == nil && h.cfg.Quotas != nil {
		err = h.cfg.Quotas.Refresh(ctx)
	}
	if err != nil {
		code := errorCode(err)
		if errors.Is(err, metastore.ErrInvalidQuota) {
			code = kerr.InvalidRequest.Code
		}
		for _, i := range valid {
			resp.Entries[i].ErrorCode, resp.Entries[i].ErrorMessage = code, errMessage(err)
		}
	}
	return now(resp), nil
}
