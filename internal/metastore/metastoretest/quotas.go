package metastoretest

import (
	"errors"
	"maps"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

func strp(s string) *string { return &s }

func testQuotas(t *testing.T, open func(t *testing.T) metastore.QuotaStore) {
	user := func(n *string) metastore.QuotaEntityPart {
		return metastore.QuotaEntityPart{Type: metastore.QuotaEntityUser, Name: n}
	}
	client := func(n *string) metastore.QuotaEntityPart {
		return metastore.QuotaEntityPart{Type: metastore.QuotaEntityClientID, Name: n}
	}
	alice := metastore.QuotaEntity{user(strp("alice"))}
	aliceApp := metastore.QuotaEntity{client(strp("app")), user(strp("alice"))} // parts in any order
	defaultClient := metastore.QuotaEntity{client(nil)}
	tricky := metastore.QuotaEntity{user(strp("<default>"))} // a user named like the default

	t.Run("SetRemoveList", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		if qs, err := s.ClientQuotas(ctx); err != nil || len(qs) != 0 {
			t.Fatalf("ClientQuotas of an empty store: %v, %v", qs, err)
		}
		err := s.AlterClientQuotas(ctx, []metastore.QuotaChange{
			{Entity: alice, Set: map[string]float64{metastore.QuotaProducerByteRate: 1024, metastore.QuotaRequestPercentage: 50}},
			{Entity: aliceApp, Set: map[string]float64{metastore.QuotaConsumerByteRate: 2048}},
			{Entity: defaultClient, Set: map[string]float64{metastore.QuotaProducerByteRate: 100}},
			{Entity: tricky, Set: map[string]float64{metastore.QuotaProducerByteRate: 7}},
		})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]map[string]float64{
			"user=alice":               {metastore.QuotaProducerByteRate: 1024, metastore.QuotaRequestPercentage: 50},
			"user=alice,client-id=app": {metastore.QuotaConsumerByteRate: 2048},
			"client-id=<default>":      {metastore.QuotaProducerByteRate: 100},
			`user="<default>"`:         {metastore.QuotaProducerByteRate: 7},
		}
		check := func(want map[string]map[string]float64) {
			t.Helper()
			qs, err := s.ClientQuotas(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(qs) != len(want) {
				t.Fatalf("ClientQuotas: %d entities, want %d: %+v", len(qs), len(want), qs)
			}
			for i, q := range qs {
				if i > 0 && qs[i-1].Entity.Key() >= q.Entity.Key() {
					t.Fatalf("ClientQuotas not sorted by key: %q before %q", qs[i-1].Entity.Key(), q.Entity.Key())
				}
				if w, ok := want[q.Entity.Key()]; !ok || !maps.Equal(w, q.Values) {
					t.Fatalf("ClientQuotas: %s = %v, want %v", q.Entity.Key(), q.Values, w)
				}
			}
		}
		check(want)
		// Removing one value keeps the others; removing the last removes
		// the entity.
		err = s.AlterClientQuotas(ctx, []metastore.QuotaChange{
			{Entity: alice, Remove: []string{metastore.QuotaRequestPercentage}, Set: map[string]float64{metastore.QuotaProducerByteRate: 4096}},
			{Entity: defaultClient, Remove: []string{metastore.QuotaProducerByteRate}},
			{Entity: metastore.QuotaEntity{user(strp("nobody"))}, Remove: []string{metastore.QuotaProducerByteRate}},
		})
		if err != nil {
			t.Fatal(err)
		}
		want["user=alice"] = map[string]float64{metastore.QuotaProducerByteRate: 4096}
		delete(want, "client-id=<default>")
		check(want)
	})

	t.Run("InvalidChangesNothing", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		for name, c := range map[string]metastore.QuotaChange{
			"no parts":        {Entity: metastore.QuotaEntity{}, Set: map[string]float64{metastore.QuotaProducerByteRate: 1}},
			"unknown type":    {Entity: metastore.QuotaEntity{{Type: "ip", Name: strp("1.2.3.4")}}, Set: map[string]float64{metastore.QuotaProducerByteRate: 1}},
			"twice a user":    {Entity: metastore.QuotaEntity{user(nil), user(strp("a"))}, Set: map[string]float64{metastore.QuotaProducerByteRate: 1}},
			"unknown key":     {Entity: alice, Set: map[string]float64{"bytes_per_fortnight": 1}},
			"zero":            {Entity: alice, Set: map[string]float64{metastore.QuotaProducerByteRate: 0}},
			"fractional rate": {Entity: alice, Set: map[string]float64{metastore.QuotaConsumerByteRate: 1.5}},
		} {
			// A valid change in the same call is not applied either.
			err := s.AlterClientQuotas(ctx, []metastore.QuotaChange{
				{Entity: aliceApp, Set: map[string]float64{metastore.QuotaProducerByteRate: 1}}, c,
			})
			if !errors.Is(err, metastore.ErrInvalidQuota) {
				t.Errorf("%s: %v, want ErrInvalidQuota", name, err)
			}
		}
		if qs, err := s.ClientQuotas(ctx); err != nil || len(qs) != 0 {
			t.Fatalf("after invalid changes: %+v, %v; want nothing", qs, err)
		}
	})
}
