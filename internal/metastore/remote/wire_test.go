package remote

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

func TestFrameRoundTrip(t *testing.T) {
	b, err := AppendFrame(nil, Frame{Kind: KindRequest, ID: 42, Payload: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ReadFrame(bufio.NewReader(bytes.NewReader(b)))
	if err != nil || f.Kind != KindRequest || f.ID != 42 || string(f.Payload) != "hello" {
		t.Fatalf("ReadFrame = %+v, %v", f, err)
	}
}

// TestFrameBounds checks that a length outside the bounds is refused
// before anything is allocated for it.
func TestFrameBounds(t *testing.T) {
	for _, n := range []uint32{0, 8, MaxFrame + 1, 1<<32 - 1} {
		b := binary.BigEndian.AppendUint32(nil, n)
		_, err := ReadFrame(bufio.NewReader(bytes.NewReader(b)))
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("length %d: %v, want ErrFrameTooLarge", n, err)
		}
	}
	b := binary.BigEndian.AppendUint32(nil, MaxHelloFrame+1)
	if _, err := ReadFrameMax(bufio.NewReader(bytes.NewReader(b)), MaxHelloFrame); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("hello over its bound: %v", err)
	}
	if _, err := AppendFrame(nil, Frame{Payload: make([]byte, MaxFrame)}); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("AppendFrame of an oversized payload: %v", err)
	}
}

// TestErrorsRoundTrip checks that every sentinel survives the wire for
// errors.Is, and a replace conflict keeps its partitions.
func TestErrorsRoundTrip(t *testing.T) {
	for name, sentinel := range sentinels {
		err := fmt.Errorf("wrapped: %w", sentinel)
		raw, mErr := Marshal(EncodeError(err))
		if mErr != nil {
			t.Fatal(mErr)
		}
		var w WireError
		if err := Unmarshal(raw, &w); err != nil {
			t.Fatal(err)
		}
		got := w.Err()
		if !errors.Is(got, sentinel) || got.Error() != err.Error() {
			t.Errorf("%s: got %v, want one matching %v", name, got, sentinel)
		}
	}
	conflict := &metastore.ReplaceConflictError{Partitions: []metastore.TopicPartition{{Partition: 3}}}
	got := EncodeError(fmt.Errorf("replace: %w", conflict)).Err()
	var c *metastore.ReplaceConflictError
	if !errors.As(got, &c) || len(c.Partitions) != 1 || c.Partitions[0].Partition != 3 || !errors.Is(got, metastore.ErrExtentsChanged) {
		t.Errorf("conflict: got %#v", got)
	}
	if EncodeError(nil) != nil || (*WireError)(nil).Err() != nil {
		t.Error("nil error did not stay nil")
	}
}

// TestInvalidUTF8 checks that strings that are not UTF-8 cross unchanged.
func TestInvalidUTF8(t *testing.T) {
	in := groupOffsetsArgs{Group: "g\xff\xfe"}
	raw, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out groupOffsetsArgs
	if err := Unmarshal(raw, &out); err != nil || out.Group != in.Group {
		t.Fatalf("got %q, %v", out.Group, err)
	}
}

// TestOpsDecodeHostile feeds every op garbage arguments: each is refused
// with an error, never a panic.
func TestOpsDecodeHostile(t *testing.T) {
	inputs := [][]byte{{0xff}, {0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x5a, 0xff, 0xff, 0xff, 0xff}, bytes.Repeat([]byte{0x81}, 100)}
	for _, name := range OpNames() {
		o, _ := Lookup(name)
		for _, in := range inputs {
			if _, err := o.Decode(in); err == nil {
				t.Errorf("%s accepted % x", name, in)
			}
		}
	}
}

// TestParseURLSeveralAddresses reads a URL naming several control
// processes; TLS then checks each host's own name.
func TestParseURLSeveralAddresses(t *testing.T) {
	o, err := ParseURL("floe://10.0.0.1:9700,10.0.0.2:9700/prod?key=k&tls=true")
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != "10.0.0.1:9700,10.0.0.2:9700" || o.VCluster != "prod" || o.Key != "k" {
		t.Fatalf("ParseURL = %+v", o)
	}
	if o.TLS == nil || o.TLS.ServerName != "" {
		t.Fatalf("TLS server name %q with several hosts, want none (each host's own)", o.TLS.ServerName)
	}
	o, err = ParseURL("floe://10.0.0.1:9700/prod?key=k&tls=true")
	if err != nil || o.TLS.ServerName != "10.0.0.1" {
		t.Fatalf("one host: %+v, %v", o, err)
	}
}

// TestHeartbeatOutageManifestCompatible checks that AgentInfo's
// OutageManifest crosses the wire, that journals and clients from before
// the field (heartbeats without it) decode with it empty, and that a
// server from before it decodes a new client's heartbeat.
func TestHeartbeatOutageManifestCompatible(t *testing.T) {
	// What AgentInfo and heartbeatArgs were before OutageManifest.
	type oldAgentInfo struct {
		ID               string
		NodeID           int32
		Host             string
		Port             int32
		Zone             string
		Roles            []string
		PeerAddr         string
		Listeners        map[string]string
		Admin, Version   string
		Started, Expires time.Time
	}
	type oldHeartbeatArgs struct {
		Agent oldAgentInfo
		TTL   time.Duration
	}
	old, err := Marshal(oldHeartbeatArgs{Agent: oldAgentInfo{ID: "a", NodeID: 3, Host: "h", Port: 9092, Roles: []string{"fetch"}}, TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var got heartbeatArgs
	if err := Unmarshal(old, &got); err != nil {
		t.Fatalf("decoding a heartbeat from before OutageManifest: %v", err)
	}
	if got.Agent.ID != "a" || got.Agent.NodeID != 3 || got.Agent.Port != 9092 || got.Agent.OutageManifest != "" || got.TTL != time.Second {
		t.Fatalf("old heartbeat decoded as %+v", got)
	}

	b, err := Marshal(heartbeatArgs{Agent: metastore.AgentInfo{ID: "b", NodeID: 4, OutageManifest: "agent-0"}, TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var back heartbeatArgs
	if err := Unmarshal(b, &back); err != nil || back.Agent.OutageManifest != "agent-0" {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	var older oldHeartbeatArgs
	if err := Unmarshal(b, &older); err != nil || older.Agent.ID != "b" || older.Agent.NodeID != 4 {
		t.Fatalf("an older server decoding a new heartbeat: %+v, %v", older, err)
	}
}
