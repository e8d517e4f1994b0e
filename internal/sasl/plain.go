package sasl

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// plainExchange is PLAIN (RFC 4616): one message, authzid NUL authcid
// NUL password. The password is checked against the user's SCRAM
// credential (SHA-512 if there is one, else SHA-256), so that one user
// store serves both mechanisms and no password is ever stored.
type plainExchange struct {
	users metastore.UserStore
	user  string
	done  bool
}

func (e *plainExchange) Step(ctx context.Context, token []byte) ([]byte, error) {
	if e.done || e.user != "" {
		return nil, failed("PLAIN takes one message")
	}
	parts := bytes.Split(token, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return nil, failed("invalid PLAIN message: want authzid NUL user NUL password")
	}
	authz, user, password := string(parts[0]), string(parts[1]), parts[2]
	if authz != "" && authz != user {
		return nil, failed("authorization id %q differs from the user name", authz)
	}
	e.user = user
	ok, err := checkPassword(ctx, e.users, user, password)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, failed("Authentication failed: Invalid username or password")
	}
	e.done = true
	return nil, nil
}

func (e *plainExchange) Done() bool         { return e.done }
func (e *plainExchange) User() string       { return e.user }
func (e *plainExchange) Expires() time.Time { return time.Time{} }

// checkPassword derives the SCRAM stored key from password with the
// stored salt and iterations and compares it with the stored one.
func checkPassword(ctx context.Context, users metastore.UserStore, user string, password []byte) (bool, error) {
	for _, m := range []metastore.ScramMechanism{metastore.ScramSHA512, metastore.ScramSHA256} {
		c, err := users.ScramCredential(ctx, user, m)
		if errors.Is(err, metastore.ErrNoCredential) {
			continue
		}
		if err != nil {
			return false, err
		}
		salted, err := SaltedPassword(m, password, c.Salt, int(c.Iterations))
		if err != nil {
			return false, err
		}
		want := NewCredential(m, salted, c.Salt, c.Iterations)
		return subtle.ConstantTimeCompare(want.StoredKey, c.StoredKey) == 1, nil
	}
	return false, nil
}
