package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"
	"time"

	"github.com/xdg-go/scram"

	"github.com/floe-io/floe/internal/metastore"
)

// DefaultIterations is the PBKDF2 iteration count of new credentials
// (Kafka's default for kafka-configs and AlterUserScramCredentials).
const DefaultIterations = 8192

func hashOf(m metastore.ScramMechanism) func() hash.Hash {
	if m == metastore.ScramSHA256 {
		return sha256.New
	}
	return sha512.New
}

// SaltedPassword is Hi(password, salt, iterations) of RFC 5802: PBKDF2
// with the mechanism's HMAC. Kafka clients send it in
// AlterUserScramCredentials (KIP-554).
func SaltedPassword(m metastore.ScramMechanism, password, salt []byte, iterations int) ([]byte, error) {
	h := hashOf(m)
	return pbkdf2.Key(h, string(password), salt, iterations, h().Size())
}

// NewCredential derives what the server stores from a salted password.
func NewCredential(m metastore.ScramMechanism, salted, salt []byte, iterations int32) metastore.ScramCredential {
	h := hashOf(m)
	mac := func(key []byte, s string) []byte {
		w := hmac.New(h, key)
		w.Write([]byte(s))
		return w.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	stored := h()
	stored.Write(clientKey)
	return metastore.ScramCredential{
		Mechanism: m, Iterations: iterations, Salt: salt,
		StoredKey: stored.Sum(nil), ServerKey: mac(salted, "Server Key"),
	}
}

// CredentialFromPassword salts password with a fresh random salt.
func CredentialFromPassword(m metastore.ScramMechanism, password string, iterations int) (metastore.ScramCredential, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return metastore.ScramCredential{}, err
	}
	salted, err := SaltedPassword(m, []byte(password), salt, iterations)
	if err != nil {
		return metastore.ScramCredential{}, err
	}
	return NewCredential(m, salted, salt, int32(iterations)), nil
}

// scramExchange is SCRAM (RFC 5802) without channel binding: client
// first, server first, client final, server final. The message parsing
// and proofs are xdg-go/scram's; the credentials are the user store's.
type scramExchange struct {
	users metastore.UserStore
	mech  metastore.ScramMechanism
	conv  *scram.ServerConversation
	ctx   context.Context // of the step that looks the user up
	err   error           // the store's error, if the lookup failed
}

func newScramExchange(users metastore.UserStore, m metastore.ScramMechanism) *scramExchange {
	e := &scramExchange{users: users, mech: m}
	gen := scram.SHA512
	if m == metastore.ScramSHA256 {
		gen = scram.SHA256
	}
	srv, err := gen.NewServer(e.lookup)
	if err != nil {
		panic(err) // only for a nil lookup
	}
	e.conv = srv.NewConversation()
	return e
}

func (e *scramExchange) lookup(user string) (scram.StoredCredentials, error) {
	c, err := e.users.ScramCredential(e.ctx, user, e.mech)
	if err != nil {
		if !errors.Is(err, metastore.ErrNoCredential) {
			e.err = err
		}
		return scram.StoredCredentials{}, err
	}
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: int(c.Iterations)},
		StoredKey:  c.StoredKey, ServerKey: c.ServerKey,
	}, nil
}

func (e *scramExchange) Step(ctx context.Context, token []byte) ([]byte, error) {
	if e.conv.Done() {
		return nil, failed("SCRAM exchange already ended")
	}
	e.ctx = ctx
	out, err := e.conv.Step(string(token))
	e.ctx = nil
	if e.err != nil {
		return nil, e.err
	}
	if err != nil {
		// Kafka's words, whatever went wrong: no hint whether the user
		// exists.
		return nil, failed("Authentication failed during authentication due to invalid credentials with SASL mechanism %s", e.mech)
	}
	return []byte(out), nil
}

func (e *scramExchange) Done() bool         { return e.conv.Done() && e.conv.Valid() }
func (e *scramExchange) User() string       { return e.conv.Username() }
func (e *scramExchange) Expires() time.Time { return time.Time{} }
