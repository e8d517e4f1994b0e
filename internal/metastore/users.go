package metastore

import (
	"context"
	"errors"
	"strings"
)

// ScramMechanism is a SCRAM hash, numbered as Kafka's
// DescribeUserScramCredentials and AlterUserScramCredentials number it
// (KIP-554).
type ScramMechanism int8

const (
	ScramSHA256 ScramMechanism = 1
	ScramSHA512 ScramMechanism = 2
)

// String is the SASL mechanism name.
func (m ScramMechanism) String() string {
	switch m {
	case ScramSHA256:
		return "SCRAM-SHA-256"
	case ScramSHA512:
		return "SCRAM-SHA-512"
	}
	return "UNKNOWN"
}

// ScramMechanismNamed returns the mechanism with SASL name name, or 0.
func ScramMechanismNamed(name string) ScramMechanism {
	switch name {
	case "SCRAM-SHA-256":
		return ScramSHA256
	case "SCRAM-SHA-512":
		return ScramSHA512
	}
	return 0
}

// ScramCredential is what a server keeps of a SCRAM password (RFC 5802,
// section 3): enough to verify a client's proof and prove itself, never
// the password or the salted password.
type ScramCredential struct {
	Mechanism  ScramMechanism
	Iterations int32
	Salt       []byte
	StoredKey  []byte // H(HMAC(SaltedPassword, "Client Key"))
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}

// UserScram is one user's SCRAM credentials, one per mechanism at most.
type UserScram struct {
	User        string
	Credentials []ScramCredential // sorted by mechanism
}

// ErrNoCredential reports a user without a credential for a mechanism.
var ErrNoCredential = errors.New("no such credential")

// UserStore keeps the SASL users' SCRAM credentials, which also verify
// PLAIN passwords. All methods are safe for concurrent use.
type UserStore interface {
	// ScramCredential returns user's credential for m (ErrNoCredential).
	ScramCredential(ctx context.Context, user string, m ScramMechanism) (ScramCredential, error)
	// ScramUsers lists the users with at least one credential, sorted
	// by name.
	ScramUsers(ctx context.Context) ([]UserScram, error)
	// SetScramCredential creates or replaces user's credential for
	// c.Mechanism.
	SetScramCredential(ctx context.Context, user string, c ScramCredential) error
	// DeleteScramCredential removes user's credential for m
	// (ErrNoCredential if there is none).
	DeleteScramCredential(ctx context.Context, user string, m ScramMechanism) error
}

// CheckScramCredential validates a credential before it is stored.
func CheckScramCredential(user string, c ScramCredential) error {
	switch {
	case user == "":
		return errors.New("empty user name")
	case strings.ContainsRune(user, 0):
		return errors.New("user name contains a NUL")
	case c.Mechanism != ScramSHA256 && c.Mechanism != ScramSHA512:
		return errors.New("unknown SCRAM mechanism")
	case c.Iterations < 4096 || c.Iterations > 16384:
		// Kafka's bounds (KIP-554).
		return errors.New("iterations must be between 4096 and 16384")
	case len(c.Salt) == 0 || len(c.StoredKey) == 0 || len(c.ServerKey) == 0:
		return errors.New("empty salt or key")
	}
	return nil
}
