package protocol

import (
	"fmt"
	"testing"
	"time"
)

func TestQuotaBuckets(t *testing.T) {
	now := time.Unix(0, 0)
	q := newQuotas(10, func() time.Time { return now }) // burst 110
	if ok, _ := q.admit("a"); !ok {
		t.Fatal("a new client is refused")
	}
	if d := q.record("a", 110); d != 0 {
		t.Fatalf("the burst costs a wait of %v", d)
	}
	if ok, _ := q.admit("a"); !ok {
		t.Fatal("refused at zero credits")
	}
	if d := q.record("a", 20); d != 2*time.Second {
		t.Fatalf("20 in debt at 10/s: wait %v", d)
	}
	if ok, d := q.admit("a"); ok || d != 2*time.Second {
		t.Fatalf("in debt: admitted %v, wait %v", ok, d)
	}
	now = now.Add(time.Second)
	if ok, d := q.admit("a"); ok || d != time.Second {
		t.Fatalf("after 1s: admitted %v, wait %v", ok, d)
	}
	now = now.Add(time.Second)
	if ok, _ := q.admit("a"); !ok {
		t.Fatal("refused once the debt is paid")
	}
	// Credits never exceed the burst.
	now = now.Add(time.Hour)
	q.record("a", 111)
	if ok, _ := q.admit("a"); ok {
		t.Fatal("credits grew past the burst")
	}
	// A debt cannot be escaped by changing client ids past the bound:
	// the clients beyond it share one bucket.
	for i := range maxQuotaClients + 10 {
		q.record(fmt.Sprint("c", i), 200)
	}
	if n := len(q.clients); n > maxQuotaClients+1 {
		t.Fatalf("%d buckets", n)
	}
	if ok, _ := q.admit("yet another"); ok {
		t.Fatal("a new client id escaped the quota while the table was full of debtors")
	}
	// Unlimited.
	var none *quotas
	if ok, _ := none.admit("a"); !ok || none.record("a", 1e9) != 0 {
		t.Fatal("a nil quota limits")
	}
}
