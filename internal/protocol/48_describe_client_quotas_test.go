package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// alterQuota sets key=value on an entity given as type, name pairs (a nil
// name is the default) and returns the entry's error code.
func (f *fixture) alterQuota(v int16, validateOnly bool, key string, value float64, entity ...any) int16 {
	f.t.Helper()
	req := kmsg.NewPtrAlterClientQuotasRequest()
	req.ValidateOnly = validateOnly
	e := kmsg.NewAlterClientQuotasRequestEntry()
	for i := 0; i < len(entity); i += 2 {
		p := kmsg.NewAlterClientQuotasRequestEntryEntity()
		p.Type, p.Name = entity[i].(string), entity[i+1].(*string)
		e.Entity = append(e.Entity, p)
	}
	e.Ops = []kmsg.AlterClientQuotasRequestEntryOp{{Key: key, Value: value}}
	req.Entries = append(req.Entries, e)
	r := do[*kmsg.AlterClientQuotasResponse](f, v, req)
	if len(r.Entries) != 1 {
		f.t.Fatalf("AlterClientQuotas: %d entries back, want 1", len(r.Entries))
	}
	return r.Entries[0].ErrorCode
}

func TestAlterClientQuotas(t *testing.T) {
	f := start(t)
	name := func(s string) *string { return &s }
	for _, tc := range []struct {
		name   string
		key    string
		value  float64
		entity []any
		want   int16
	}{
		{"client id", "producer_byte_rate", 1024, []any{"client-id", name("app")}, 0},
		{"default user", "consumer_byte_rate", 2048, []any{"user", (*string)(nil)}, 0},
		{"user and client id", "request_percentage", 25.5, []any{"user", name("alice"), "client-id", name("app")}, 0},
		{"unknown entity type", "producer_byte_rate", 1, []any{"group", name("g")}, kerr.InvalidRequest.Code},
		{"no entity", "producer_byte_rate", 1, nil, kerr.InvalidRequest.Code},
		{"unknown key", "fetch_everything_rate", 1, []any{"user", name("a")}, kerr.InvalidRequest.Code},
		{"negative", "producer_byte_rate", -5, []any{"user", name("a")}, kerr.InvalidRequest.Code},
		{"fractional byte rate", "producer_byte_rate", 1.5, []any{"user", name("a")}, kerr.InvalidRequest.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectCode(t, "entry", f.alterQuota(1, false, tc.key, tc.value, tc.entity...), tc.want)
		})
	}
	// validate_only changes nothing.
	expectCode(t, "validate only", f.alterQuota(0, true, "producer_byte_rate", 7, "client-id", name("ghost")), 0)
	if n := len(f.describeQuotas(nil, false)); n != 3 {
		t.Fatalf("%d entities after the alters, want 3", n)
	}
}

func (f *fixture) describeQuotas(cs []kmsg.DescribeClientQuotasRequestComponent, strict bool) []kmsg.DescribeClientQuotasResponseEntry {
	f.t.Helper()
	req := kmsg.NewPtrDescribeClientQuotasRequest()
	req.Components, req.Strict = cs, strict
	r := do[*kmsg.DescribeClientQuotasResponse](f, 1, req)
	expectCode(f.t, "describe", r.ErrorCode, 0)
	return r.Entries
}

func TestDescribeClientQuotas(t *testing.T) {
	f := start(t)
	name := func(s string) *string { return &s }
	f.alterQuota(1, false, "producer_byte_rate", 1, "client-id", name("app"))
	f.alterQuota(1, false, "producer_byte_rate", 2, "client-id", (*string)(nil))
	f.alterQuota(1, false, "producer_byte_rate", 3, "user", name("alice"))
	f.alterQuota(1, false, "producer_byte_rate", 4, "user", name("alice"), "client-id", name("app"))
	comp := func(typ string, match int8, m *string) kmsg.DescribeClientQuotasRequestComponent {
		return kmsg.DescribeClientQuotasRequestComponent{EntityType: typ, MatchType: kmsg.QuotasMatchType(match), Match: m}
	}
	for _, tc := range []struct {
		name   string
		cs     []kmsg.DescribeClientQuotasRequestComponent
		strict bool
		want   []float64 // the producer_byte_rate values of the entities found
	}{
		{"everything", nil, false, []float64{2, 1, 3, 4}}, // sorted by entity: "<default>" before "app"
		{"client id app", []kmsg.DescribeClientQuotasRequestComponent{comp("client-id", 0, name("app"))}, false, []float64{1, 4}},
		{"client id app, strict", []kmsg.DescribeClientQuotasRequestComponent{comp("client-id", 0, name("app"))}, true, []float64{1}},
		{"default client id", []kmsg.DescribeClientQuotasRequestComponent{comp("client-id", 1, nil)}, false, []float64{2}},
		{"exact with a null name is the default", []kmsg.DescribeClientQuotasRequestComponent{comp("client-id", 0, nil)}, false, []float64{2}},
		{"any named client id", []kmsg.DescribeClientQuotasRequestComponent{comp("client-id", 2, nil)}, false, []float64{1, 4}},
		{"user alice and any client", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 0, name("alice")), comp("client-id", 2, nil)}, false, []float64{4}},
		{"no such user", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 0, name("bob"))}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []float64
			for _, e := range f.describeQuotas(tc.cs, tc.strict) {
				got = append(got, e.Values[0].Value)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("found %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("found %v, want %v", got, tc.want)
				}
			}
		})
	}
	req := kmsg.NewPtrDescribeClientQuotasRequest()
	req.Components = []kmsg.DescribeClientQuotasRequestComponent{comp("user", 1, nil), comp("user", 2, nil)}
	expectCode(t, "a type filtered twice", do[*kmsg.DescribeClientQuotasResponse](f, 1, req).ErrorCode, kerr.InvalidRequest.Code)
}
