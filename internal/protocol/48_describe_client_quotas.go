package protocol

// DescribeClientQuotas v0–v1 (KIP-546).
//
// Lists the stored quotas whose entity matches every filter component:
// match type 0 a named entity (or the default, with a null match), 1 the
// default, 2 any named entity of the type. Strict filters also require
// that the entity has no other part. A malformed filter (an unknown match
// type, a type given twice) is INVALID_REQUEST.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(48, 0, 1, (*Handler).describeClientQuotas) }

func (h *Handler) describeClientQuotas(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DescribeClientQuotasRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
		if !h.allowedOnCluster(req, acl.DescribeConfigs) {
			resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			return resp
		}
		if err := checkQuotaFilter(r.Components); err != nil {
			resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, errMessage(err)
			return resp
		}
		qs, err := h.store.ClientQuotas(ctx)
		if err != nil {
			resp.ErrorCode, resp.ErrorMessage = errorCode(err), errMessage(err)
			return resp
		}
		for _, q := range qs {
			if !matchesQuotaFilter(q.Entity, r.Components, r.Strict) {
				continue
			}
			e := kmsg.NewDescribeClientQuotasResponseEntry()
			for _, p := range q.Entity {
				ee := kmsg.NewDescribeClientQuotasResponseEntryEntity()
				ee.Type, ee.Name = p.Type, p.Name
				e.Entity = append(e.Entity, ee)
			}
			for k, v := range q.Values {
				ev := kmsg.NewDescribeClientQuotasResponseEntryValue()
				ev.Key, ev.Value = k, v
				e.Values = append(e.Values, ev)
			}
			resp.Entries = append(resp.Entries, e)
		}
		return resp
	}, nil
}

func checkQuotaFilter(cs []kmsg.DescribeClientQuotasRequestComponent) error {
	seen := map[string]bool{}
	for _, c := range cs {
		if seen[c.EntityType] {
			return fmt.Errorf("entity type %q filtered twice", c.EntityType)
		}
		seen[c.EntityType] = true
		if c.MatchType < 0 || c.MatchType > 2 {
			return fmt.Errorf("unknown match type %d", c.MatchType)
		}
	}
	return nil
}

func matchesQuotaFilter(e metastore.QuotaEntity, cs []kmsg.DescribeClientQuotasRequestComponent, strict bool) bool {
	for _, c := range cs {
		p, ok := e.Part(c.EntityType)
		if !ok {
			return false
		}
		switch c.MatchType {
		case 0: // exact: a name, or the default when Match is null
			if (c.Match == nil) != (p.Name == nil) || c.Match != nil && *c.Match != *p.Name {
				return false
			}
		case 1: // the default
			if p.Name != nil {
				return false
			}
		case 2: // any named entity
			if p.Name == nil {
				return false
			}
		}
	}
	return !strict || len(e) == len(cs)
}
