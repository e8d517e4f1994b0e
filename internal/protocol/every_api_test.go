package protocol_test

import (
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/protocol"
	"github.com/floe-io/floe/internal/testutil"
)

// TestEveryKeyAndVersion walks every API key Kafka defines (all kmsg
// knows, and the key after them) and every version from -1 to one past
// kmsg's newest, and checks Kafka's answer:
//
//   - an advertised version gets a response that decodes at that version
//     (the request is kmsg's default: empty lists, empty names);
//   - anything else closes the connection, as Kafka's SocketServer does
//     when ApiVersionManager.isApiEnabled refuses a header (an unknown
//     key, or a version outside the API's range), except ApiVersions,
//     which Kafka accepts at any version and answers at v0 with
//     UNSUPPORTED_VERSION and its own range (KIP-511).
func TestEveryKeyAndVersion(t *testing.T) {
	f := start(t)
	served := map[int16][2]int16{}
	for _, k := range protocol.Supported() {
		served[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	deadline := time.Now().Add(2 * time.Minute)
	answered, closed := 0, 0
	for key := int16(0); key <= kmsg.MaxKey+1; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			// A key Kafka does not define: the header is unreadable.
			if !closesOn(t, f, key, 0, nil) {
				t.Errorf("key %d (unknown to Kafka): connection not closed", key)
			}
			closed++
			continue
		}
		r, ok := served[key]
		for v := int16(-1); v <= req.MaxVersion()+1; v++ {
			if time.Now().After(deadline) {
				t.Fatalf("walk took over 2 minutes (at %s v%d)", kmsg.NameForKey(key), v)
			}
			name := kmsg.NameForKey(key)
			if ok && v >= r[0] && v <= r[1] {
				req := kmsg.RequestForKey(key)
				quick(req)
				req.SetVersion(v)
				corr := f.c.Send(req)
				resp := req.ResponseKind()
				resp.SetVersion(v)
				f.c.Receive(corr, resp) // fails the test if it does not decode
				answered++
				continue
			}
			if key == 18 {
				c := testutil.Dial(t, f.a.Addr())
				req := kmsg.NewPtrApiVersionsRequest()
				req.SetVersion(v)
				corr := c.Send(req)
				resp := kmsg.NewPtrApiVersionsResponse()
				resp.SetVersion(0)
				c.Receive(corr, resp)
				expectCode(t, "ApiVersions v"+itoa(v), resp.ErrorCode, kerr.UnsupportedVersion.Code)
				if len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 || resp.ApiKeys[0].MaxVersion != r[1] {
					t.Errorf("ApiVersions v%d: listed %+v, want ApiVersions' own range", v, resp.ApiKeys)
				}
				c.Conn.Close()
				answered++
				continue
			}
			if !closesOn(t, f, key, v, req) {
				t.Errorf("%s (%d) v%d, not advertised: connection not closed", name, key, v)
			}
			closed++
		}
	}
	t.Logf("%d requests answered, %d connections closed", answered, closed)
}

// quick changes a default request so that it cannot wait: no long poll.
func quick(req kmsg.Request) {
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		r.MaxWaitMillis = 0
	case *kmsg.ProduceRequest:
		r.Acks = -1
	}
}

// closesOn sends one request for key at version v on a new connection and
// reports whether the agent closed it without answering. req is nil for a
// key kmsg does not know; a header alone is sent then.
func closesOn(t *testing.T, f *fixture, key, v int16, req kmsg.Request) bool {
	t.Helper()
	c := testutil.Dial(t, f.a.Addr())
	defer c.Conn.Close()
	if req != nil {
		req.SetVersion(v)
		c.Send(req)
	} else {
		var frame []byte
		frame = binary.BigEndian.AppendUint16(frame, uint16(key))
		frame = binary.BigEndian.AppendUint16(frame, uint16(v))
		frame = binary.BigEndian.AppendUint32(frame, 1)
		frame = binary.BigEndian.AppendUint16(frame, 0) // empty client id
		frame = append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)
		if err := c.WriteRaw(frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ExpectClosed(5 * time.Second); err != nil {
		t.Logf("%s v%d: %v", kmsg.NameForKey(key), v, err)
		return false
	}
	return true
}

func itoa(v int16) string {
	return strconv.Itoa(int(v))
}
