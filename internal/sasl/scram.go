package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

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
	stored := h()
	stored.Write(mac(h, salted, []byte("Client Key")))
	return metastore.ScramCredential{
		Mechanism: m, Iterations: iterations, Salt: salt,
		StoredKey: stored.Sum(nil), ServerKey: mac(h, salted, []byte("Server Key")),
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
// first, server first, client final, server final. Like Kafka, the
// client's final nonce must end with the server's (not equal it):
// librdkafka sends its own nonce in front of the combined one.
type scramExchange struct {
	users metastore.UserStore
	mech  metastore.ScramMechanism

	step      int
	user      string
	gs2Header string
	bare      string // client-first-message-bare
	first     string // server-first-message
	nonce     string // the combined nonce
	cred      metastore.ScramCredential
	done      bool
}

func newScramExchange(users metastore.UserStore, m metastore.ScramMechanism) *scramExchange {
	return &scramExchange{users: users, mech: m}
}

func (e *scramExchange) invalid() error {
	// Kafka's words, whatever went wrong: no hint whether the user
	// exists.
	return failed("Authentication failed during authentication due to invalid credentials with SASL mechanism %s", e.mech)
}

func (e *scramExchange) Step(ctx context.Context, token []byte) ([]byte, error) {
	switch e.step {
	case 0:
		e.step++
		return e.clientFirst(ctx, string(token))
	case 1:
		e.step++
		return e.clientFinal(string(token))
	}
	return nil, failed("SCRAM exchange already ended")
}

// clientFirst reads gs2-header client-first-message-bare: "n,[a=authzid],
// n=user,r=nonce[,extensions]".
func (e *scramExchange) clientFirst(ctx context.Context, msg string) ([]byte, error) {
	parts := strings.SplitN(msg, ",", 3)
	if len(parts) != 3 || (parts[0] != "n" && parts[0] != "y") {
		return nil, failed("invalid SCRAM client-first-message (channel binding is not supported)")
	}
	e.gs2Header = parts[0] + "," + parts[1] + ","
	e.bare = parts[2]
	attrs := strings.Split(e.bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") || len(attrs[1]) < 3 {
		return nil, failed("invalid SCRAM client-first-message")
	}
	for _, ext := range attrs[2:] {
		if strings.HasPrefix(ext, "tokenauth=") {
			return nil, failed("delegation tokens are not supported")
		}
	}
	user, ok := saslName(attrs[0][2:])
	if !ok {
		return nil, failed("invalid SCRAM user name")
	}
	if authz, ok := strings.CutPrefix(parts[1], "a="); ok {
		if a, _ := saslName(authz); a != user {
			return nil, failed("Authentication failed: Client requested an authorization id that is different from username")
		}
	}
	e.user = user
	c, err := e.users.ScramCredential(ctx, user, e.mech)
	if errors.Is(err, metastore.ErrNoCredential) {
		return nil, e.invalid()
	}
	if err != nil {
		return nil, err
	}
	e.cred = c
	random := make([]byte, 24)
	rand.Read(random)
	e.nonce = attrs[1][2:] + base64.RawURLEncoding.EncodeToString(random)
	e.first = fmt.Sprintf("r=%s,s=%s,i=%d", e.nonce, base64.StdEncoding.EncodeToString(c.Salt), c.Iterations)
	return []byte(e.first), nil
}

// clientFinal reads "c=binding,r=nonce[,extensions],p=proof" and checks
// the proof against the stored key.
func (e *scramExchange) clientFinal(msg string) ([]byte, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, failed("invalid SCRAM client-final-message")
	}
	withoutProof, proofB64 := msg[:i], msg[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || attrs[0] != "c="+base64.StdEncoding.EncodeToString([]byte(e.gs2Header)) {
		return nil, failed("invalid SCRAM channel binding")
	}
	if nonce, ok := strings.CutPrefix(attrs[1], "r="); !ok || !strings.HasSuffix(nonce, e.nonce) {
		return nil, failed("Invalid client nonce in the final client message.")
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	h := hashOf(e.mech)
	if err != nil || len(proof) != h().Size() {
		return nil, e.invalid()
	}
	auth := []byte(e.bare + "," + e.first + "," + withoutProof)
	clientKey := mac(h, e.cred.StoredKey, auth)
	for i := range clientKey {
		clientKey[i] ^= proof[i]
	}
	stored := h()
	stored.Write(clientKey)
	if subtle.ConstantTimeCompare(stored.Sum(nil), e.cred.StoredKey) != 1 {
		return nil, e.invalid()
	}
	e.done = true
	return []byte("v=" + base64.StdEncoding.EncodeToString(mac(h, e.cred.ServerKey, auth))), nil
}

func mac(h func() hash.Hash, key, data []byte) []byte {
	w := hmac.New(h, key)
	w.Write(data)
	return w.Sum(nil)
}

// saslName decodes a SCRAM saslname: "=2C" is ",", "=3D" is "=", and no
// other "=" may appear.
func saslName(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), b.Len() > 0
}

func (e *scramExchange) Done() bool         { return e.done }
func (e *scramExchange) User() string       { return e.user }
func (e *scramExchange) Expires() time.Time { return time.Time{} }
