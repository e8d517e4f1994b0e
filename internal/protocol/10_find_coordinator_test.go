package protocol_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestFindCoordinator(t *testing.T) {
	f := start(t)
	host, portText, err := net.SplitHostPort(f.a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portText)
	self := f.metadata(12, false).Brokers[0].NodeID

	type answer struct {
		key  string
		code int16
	}
	for _, tc := range []struct {
		name    string
		version int16
		typ     int8
		keys    []string // one key before v4
		want    []answer
	}{
		{name: "group v0", version: 0, keys: []string{"g"}, want: []answer{{key: "g"}}},
		{name: "group v3", version: 3, keys: []string{"g"}, want: []answer{{key: "g"}}},
		{name: "batched v4", version: 4, keys: []string{"g1", "g2"}, want: []answer{{key: "g1"}, {key: "g2"}}},
		{name: "transaction coordinator", version: 3, typ: 1, keys: []string{"tx"}, want: []answer{{key: "tx"}}},
		{name: "transaction coordinators v4", version: 4, typ: 1, keys: []string{"tx1", "tx2"}, want: []answer{{key: "tx1"}, {key: "tx2"}}},
		{name: "empty transactional id", version: 4, typ: 1, keys: []string{""}, want: []answer{{key: "", code: kerr.InvalidRequest.Code}}},
		{name: "unknown key type", version: 4, typ: 9, keys: []string{"x"}, want: []answer{{key: "x", code: kerr.InvalidRequest.Code}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorType = tc.typ
			if tc.version < 4 {
				req.CoordinatorKey = tc.keys[0]
			} else {
				req.CoordinatorKeys = tc.keys
			}
			resp := do[*kmsg.FindCoordinatorResponse](f, tc.version, req)
			var got []kmsg.FindCoordinatorResponseCoordinator
			if tc.version < 4 {
				got = []kmsg.FindCoordinatorResponseCoordinator{{Key: tc.keys[0], NodeID: resp.NodeID, Host: resp.Host, Port: resp.Port, ErrorCode: resp.ErrorCode}}
			} else {
				got = resp.Coordinators
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d coordinators, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				c := got[i]
				expectCode(t, "key "+w.key, c.ErrorCode, w.code)
				if c.Key != w.key {
					t.Errorf("key %q, want %q", c.Key, w.key)
				}
				wantNode, wantHost, wantPort := self, host, int32(port)
				if w.code != 0 {
					wantNode, wantHost, wantPort = -1, "", 0
				}
				if c.NodeID != wantNode || c.Host != wantHost || c.Port != wantPort {
					t.Errorf("key %q: coordinator %d at %s:%d, want %d at %s:%d", w.key, c.NodeID, c.Host, c.Port, wantNode, wantHost, wantPort)
				}
			}
		})
	}
}
