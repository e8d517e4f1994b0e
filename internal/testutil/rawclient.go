package testutil

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

// RawClient speaks the Kafka protocol one frame at a time, for tests that
// need to control exactly what goes on the wire (pipelining, bad frames,
// specific versions).
type RawClient struct {
	// ClientID is sent in every request header (default "raw-test").
	ClientID string

	t    testing.TB
	Conn net.Conn
	r    *bufio.Reader
	corr int32
}

// Dial connects a RawClient to addr.
func Dial(t testing.TB, addr string) *RawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &RawClient{ClientID: "raw-test", t: t, Conn: c, r: bufio.NewReader(c)}
}

// Send writes req at its current version and returns its correlation id.
func (c *RawClient) Send(req kmsg.Request) int32 {
	c.t.Helper()
	c.corr++
	if _, err := c.Conn.Write(wire.AppendRequest(nil, c.corr, c.ClientID, req)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
	return c.corr
}

// WriteRaw writes bytes as they are.
func (c *RawClient) WriteRaw(b []byte) error {
	_, err := c.Conn.Write(b)
	return err
}

// Receive reads the next response frame, checks its correlation id and
// decodes it as resp (whose version must be set).
func (c *RawClient) Receive(corr int32, resp kmsg.Response) {
	c.t.Helper()
	c.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	frame, err := wire.ReadFrame(c.r, 1<<30)
	if err != nil {
		c.t.Fatalf("receive: %v", err)
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		c.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	body := frame[4:]
	if resp.IsFlexible() && resp.Key() != wire.ApiVersionsKey {
		body = body[1:] // empty header tag section
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode %T: %v", resp, err)
	}
}

// Do sends req and decodes its response.
func (c *RawClient) Do(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	corr := c.Send(req)
	resp := req.ResponseKind()
	c.Receive(corr, resp)
	return resp
}

// ExpectClosed waits until the server closes the connection.
func (c *RawClient) ExpectClosed(within time.Duration) error {
	c.Conn.SetReadDeadline(time.Now().Add(within))
	_, err := c.r.ReadByte()
	if err == io.EOF {
		return nil
	}
	if err == nil {
		return fmt.Errorf("server sent data instead of closing")
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return fmt.Errorf("connection still open after %v", within)
	}
	return nil // reset also counts as closed
}
