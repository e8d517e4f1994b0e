package agent

// SASL on the Kafka listeners (KIP-43, KIP-152, KIP-368).
//
// A SASL listener's connection starts unauthenticated: it may send
// ApiVersions, SaslHandshake and SaslAuthenticate, and anything else
// closes it, as Kafka does. SaslHandshake v1 names the mechanism and
// SaslAuthenticate requests carry its tokens; after SaslHandshake v0 the
// tokens follow as bare length-prefixed frames, without Kafka headers,
// and are answered the same way. A failed authentication is answered
// (SASL_AUTHENTICATION_FAILED with a message, on v1) and the connection
// closed. With MaxReauth, a session authenticated by SaslAuthenticate v1
// or later lasts that long (no longer than its token) and the client must
// authenticate again on the same connection, with the same principal;
// the first request after the session expired closes the connection.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/protocol"
	"github.com/floe-io/floe/internal/sasl"
	"github.com/floe-io/floe/internal/wire"
)

const (
	saslHandshakeKey    = 17
	saslAuthenticateKey = 36
	// maxUnauthenticatedFrame is Kafka's sasl.server.max.receive.size.
	maxUnauthenticatedFrame = 512 << 10
	// saslStepTimeout bounds one step's store or JWKS lookups.
	saslStepTimeout = 10 * time.Second
	// failedAuthDelay is Kafka's connection.failed.authentication.delay.ms:
	// a failure is answered this late, which slows password guessing on
	// one connection (the agent's other connections are not held up).
	failedAuthDelay = 100 * time.Millisecond
)

// delayed answers resp after d (or at once when the agent drains).
func delayed(resp kmsg.Response, d time.Duration) func(context.Context) kmsg.Response {
	return func(ctx context.Context) kmsg.Response {
		if d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
		return resp
	}
}

var (
	errAuthentication  = errors.New("SASL authentication failed")
	errUnauthenticated = errors.New("request before authentication")
	errSessionExpired  = errors.New("SASL session expired")
)

type saslState int

const (
	saslHandshake     saslState = iota // waiting for SaslHandshake
	saslAuthenticate                   // SaslAuthenticate requests carry the tokens
	saslRawTokens                      // bare tokens (after SaslHandshake v0)
	saslAuthenticated                  // done; SaslHandshake starts a re-authentication
)

// saslSession is a connection's authentication state; only the
// connection's reader touches it.
type saslSession struct {
	state     saslState
	mechanism string
	exchange  sasl.Exchange
	user      string    // authenticated user; "" before the first success
	expires   time.Time // zero: the session does not expire
}

func (s *saslSession) authenticated() bool {
	// During a re-authentication, requests pipelined before it are
	// still served.
	return s.user != "" && s.state != saslRawTokens
}

func (s *saslSession) expired(now time.Time) bool {
	return !s.expires.IsZero() && now.After(s.expires)
}

// saslRequest answers SaslHandshake and SaslAuthenticate. A non-nil
// error closes the connection after resp (if any) is sent.
func (c *conn) saslRequest(req *wire.Request) (kmsg.Response, error) {
	s := c.sasl
	switch r := req.Req.(type) {
	case *kmsg.SASLHandshakeRequest:
		if r.Version > 1 {
			return nil, fmt.Errorf("%w: SaslHandshake v%d", protocol.ErrUnsupported, r.Version)
		}
		resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.SupportedMechanisms = c.a.sasl.Mechanisms()
		switch {
		case s.state == saslAuthenticated && r.Version == 0:
			// Re-authentication needs v1 (KIP-368).
			resp.ErrorCode = kerr.IllegalSaslState.Code
			return resp, fmt.Errorf("%w: re-authentication with SaslHandshake v0", errAuthentication)
		case s.state != saslHandshake && s.state != saslAuthenticated:
			resp.ErrorCode = kerr.IllegalSaslState.Code
			return resp, fmt.Errorf("%w: unexpected SaslHandshake", errAuthentication)
		case !c.a.sasl.Offers(r.Mechanism):
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
			c.a.metrics.auths.WithLabelValues("unsupported", "failed").Inc()
			return resp, fmt.Errorf("%w: mechanism %q not offered", errAuthentication, r.Mechanism)
		}
		ex, err := c.a.sasl.Start(r.Mechanism)
		if err != nil {
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
			return resp, fmt.Errorf("%w: %v", errAuthentication, err)
		}
		s.mechanism, s.exchange = r.Mechanism, ex
		s.state = saslAuthenticate
		if r.Version == 0 {
			s.state = saslRawTokens
		}
		return resp, nil

	case *kmsg.SASLAuthenticateRequest:
		if r.Version > 2 {
			return nil, fmt.Errorf("%w: SaslAuthenticate v%d", protocol.ErrUnsupported, r.Version)
		}
		resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		if s.state != saslAuthenticate {
			resp.ErrorCode = kerr.IllegalSaslState.Code
			msg := "SaslAuthenticate without a SaslHandshake before it"
			resp.ErrorMessage = &msg
			return resp, fmt.Errorf("%w: %s", errAuthentication, msg)
		}
		challenge, err := c.saslStep(r.SASLAuthBytes)
		if err != nil {
			resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
			msg := authMessage(err)
			resp.ErrorMessage = &msg
			return resp, err
		}
		resp.SASLAuthBytes = challenge
		if s.exchange.Done() {
			if err := c.authenticated(c.a.cfg.Clock(), r.Version >= 1); err != nil {
				resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
				msg := authMessage(err)
				resp.ErrorMessage = &msg
				return resp, err
			}
			if !s.expires.IsZero() {
				resp.SessionLifetimeMillis = max(s.expires.Sub(c.a.cfg.Clock()).Milliseconds(), 1)
			}
		}
		return resp, nil
	}
	return nil, fmt.Errorf("%w: key %d", protocol.ErrUnsupported, req.Key)
}

// rawToken takes one bare token after SaslHandshake v0 and returns the
// bare answer; a failure closes the connection without an answer, as
// Kafka does.
func (c *conn) rawToken(token []byte) ([]byte, error) {
	challenge, err := c.saslStep(token)
	if err != nil {
		return nil, err
	}
	if c.sasl.exchange.Done() {
		if err := c.authenticated(c.a.cfg.Clock(), false); err != nil {
			return nil, err
		}
	}
	if challenge == nil {
		challenge = []byte{}
	}
	return challenge, nil
}

// saslStep runs one step of the exchange; failures are counted.
func (c *conn) saslStep(token []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(c.a.ctx, saslStepTimeout)
	defer cancel()
	challenge, err := c.sasl.exchange.Step(ctx, token)
	if err != nil {
		c.a.metrics.auths.WithLabelValues(c.sasl.mechanism, "failed").Inc()
		if errors.Is(err, sasl.ErrAuthentication) {
			return nil, fmt.Errorf("%w: %w", errAuthentication, err)
		}
		c.a.log.Warn("SASL authentication could not be checked", "remote", c.remote, "mechanism", c.sasl.mechanism, "err", err)
		return nil, fmt.Errorf("%w: %w", errAuthentication, err)
	}
	return challenge, nil
}

// authenticated ends a successful exchange: the connection takes the
// user's principal, and its session lifetime starts.
func (c *conn) authenticated(now time.Time, reauthCapable bool) error {
	s, ex := c.sasl, c.sasl.exchange
	if s.user != "" && ex.User() != s.user {
		c.a.metrics.auths.WithLabelValues(s.mechanism, "failed").Inc()
		return fmt.Errorf("%w: %w", errAuthentication,
			sasl.Failed("Cannot change principals during re-authentication from User:%s to User:%s", s.user, ex.User()))
	}
	s.user, s.state, s.exchange = ex.User(), saslAuthenticated, nil
	c.principal = "User:" + s.user
	s.expires = time.Time{}
	if d := c.a.cfg.MaxReauth; d > 0 && reauthCapable {
		s.expires = now.Add(d)
		if exp := ex.Expires(); !exp.IsZero() && exp.Before(s.expires) {
			s.expires = exp
		}
	}
	c.a.metrics.auths.WithLabelValues(s.mechanism, "ok").Inc()
	c.a.log.Debug("SASL authenticated", "remote", c.remote, "listener", c.l.Name, "mechanism", s.mechanism, "principal", c.principal)
	return nil
}

// authMessage is what the client is told of a failure: the mechanism's
// words, never the store's errors.
func authMessage(err error) string {
	var ae *sasl.AuthError
	if errors.As(err, &ae) {
		return ae.Msg
	}
	return "Authentication failed: the credentials could not be checked"
}
