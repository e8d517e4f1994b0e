// Package sasl is the server side of the SASL mechanisms Kafka clients
// speak: PLAIN (RFC 4616), SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802,
// RFC 7677) and OAUTHBEARER (RFC 7628, Kafka's KIP-255). It checks
// credentials; it knows nothing of Kafka framing (the agent's connection
// carries the tokens) and never sees or keeps a SCRAM password.
package sasl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// Mechanism names, as clients ask for them.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
	OAuthBearer = "OAUTHBEARER"
)

// All lists the mechanisms this package serves.
var All = []string{Plain, ScramSHA256, ScramSHA512, OAuthBearer}

// ErrAuthentication is the cause of every failed exchange; its message,
// wrapped around it, is what the client is told (never whether a user
// exists).
var ErrAuthentication = errors.New("authentication failed")

// Config says what a server offers and what it checks credentials with.
type Config struct {
	// Mechanisms offered to clients, in the order of preference.
	Mechanisms []string
	// Users holds the SCRAM credentials; PLAIN passwords are verified
	// against them too.
	Users metastore.UserStore
	// OAuth verifies OAUTHBEARER tokens; required when that mechanism is
	// offered.
	OAuth *TokenVerifier
}

// Server starts authentication exchanges. It is safe for concurrent use.
type Server struct {
	cfg Config
}

// NewServer checks cfg and returns a Server.
func NewServer(cfg Config) (*Server, error) {
	if len(cfg.Mechanisms) == 0 {
		return nil, errors.New("sasl: no mechanisms")
	}
	for _, m := range cfg.Mechanisms {
		switch m {
		case Plain, ScramSHA256, ScramSHA512:
			if cfg.Users == nil {
				return nil, fmt.Errorf("sasl: %s needs a user store", m)
			}
		case OAuthBearer:
			if cfg.OAuth == nil {
				return nil, errors.New("sasl: OAUTHBEARER needs a token verifier (JWKS)")
			}
		default:
			return nil, fmt.Errorf("sasl: unknown mechanism %q (known: %s)", m, strings.Join(All, ", "))
		}
	}
	return &Server{cfg: cfg}, nil
}

// Mechanisms lists the offered mechanisms.
func (s *Server) Mechanisms() []string { return slices.Clone(s.cfg.Mechanisms) }

// Offers reports whether mechanism is offered.
func (s *Server) Offers(mechanism string) bool { return slices.Contains(s.cfg.Mechanisms, mechanism) }

// Exchange is one authentication: the client's tokens in, the server's
// out, until Done.
type Exchange interface {
	// Step takes the client's next token and returns the server's
	// answer. An error ends the exchange: authentication failed (errors
	// wrapping ErrAuthentication carry the message for the client) or
	// the store failed.
	Step(ctx context.Context, token []byte) (challenge []byte, err error)
	// Done reports that the client is authenticated.
	Done() bool
	// User is the authenticated user name (Kafka's principal is
	// "User:"+User); valid once Done.
	User() string
	// Expires is when the credential stops being valid (an OAUTHBEARER
	// token's exp), or zero.
	Expires() time.Time
}

// Start begins an exchange for an offered mechanism.
func (s *Server) Start(mechanism string) (Exchange, error) {
	if !s.Offers(mechanism) {
		return nil, fmt.Errorf("sasl: mechanism %q not offered", mechanism)
	}
	switch mechanism {
	case Plain:
		return &plainExchange{users: s.cfg.Users}, nil
	case ScramSHA256:
		return newScramExchange(s.cfg.Users, metastore.ScramSHA256), nil
	case ScramSHA512:
		return newScramExchange(s.cfg.Users, metastore.ScramSHA512), nil
	case OAuthBearer:
		return &oauthExchange{v: s.cfg.OAuth}, nil
	}
	return nil, fmt.Errorf("sasl: mechanism %q not offered", mechanism)
}

// AuthError is a failed authentication; Msg is what the client is told.
type AuthError struct{ Msg string }

func (e *AuthError) Error() string        { return e.Msg }
func (e *AuthError) Is(target error) bool { return target == ErrAuthentication }

// Failed returns an AuthError.
func Failed(format string, args ...any) error {
	return &AuthError{Msg: fmt.Sprintf(format, args...)}
}

func failed(format string, args ...any) error { return Failed(format, args...) }
