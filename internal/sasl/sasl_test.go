package sasl_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/sasl"
)

// users is an in-memory metastore.UserStore.
type users map[string]metastore.ScramCredential

func (u users) ScramCredential(_ context.Context, user string, m metastore.ScramMechanism) (metastore.ScramCredential, error) {
	c, ok := u[user+"/"+m.String()]
	if !ok {
		return c, metastore.ErrNoCredential
	}
	return c, nil
}
func (u users) ScramUsers(context.Context) ([]metastore.UserScram, error) { return nil, nil }
func (u users) SetScramCredential(_ context.Context, user string, c metastore.ScramCredential) error {
	u[user+"/"+c.Mechanism.String()] = c
	return nil
}
func (u users) DeleteScramCredential(context.Context, string, metastore.ScramMechanism) error {
	return nil
}

func TestPlainChecksScramCredentials(t *testing.T) {
	store := users{}
	cred, err := sasl.CredentialFromPassword(metastore.ScramSHA256, "pässword", 4096)
	if err != nil {
		t.Fatal(err)
	}
	store.SetScramCredential(context.Background(), "bob", cred)
	srv, err := sasl.NewServer(sasl.Config{Mechanisms: []string{sasl.Plain}, Users: store})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		msg  string
		ok   bool
		user string
	}{
		{"\x00bob\x00pässword", true, "bob"},
		{"bob\x00bob\x00pässword", true, "bob"},
		{"eve\x00bob\x00pässword", false, ""},
		{"\x00bob\x00password", false, ""},
		{"\x00nobody\x00pässword", false, ""},
		{"\x00bob", false, ""},
	} {
		ex, _ := srv.Start(sasl.Plain)
		_, err := ex.Step(context.Background(), []byte(c.msg))
		if c.ok != (err == nil) || ex.Done() != c.ok || (c.ok && ex.User() != c.user) {
			t.Errorf("%q: err %v, done %v, user %q", c.msg, err, ex.Done(), ex.User())
		}
		if err != nil && !errors.Is(err, sasl.ErrAuthentication) {
			t.Errorf("%q: %v is not an authentication failure", c.msg, err)
		}
	}
}

func TestNewServerChecksMechanisms(t *testing.T) {
	if _, err := sasl.NewServer(sasl.Config{Mechanisms: []string{"GSSAPI"}, Users: users{}}); err == nil {
		t.Error("GSSAPI accepted")
	}
	if _, err := sasl.NewServer(sasl.Config{Mechanisms: []string{sasl.OAuthBearer}}); err == nil {
		t.Error("OAUTHBEARER without a verifier accepted")
	}
	if _, err := sasl.NewServer(sasl.Config{Mechanisms: []string{sasl.ScramSHA512}}); err == nil {
		t.Error("SCRAM without users accepted")
	}
}

// TestTokens: keys of each type from a JWKS served over HTTP, the checks
// of exp, aud and iss, the principal claim, and the OAUTHBEARER message.
func TestTokens(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	b64 := base64.RawURLEncoding.EncodeToString
	point, _ := ecKey.PublicKey.Bytes()
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "rsa", "n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes())},
		{"kty": "EC", "kid": "ec", "crv": "P-384", "x": b64(point[1:49]), "y": b64(point[49:])},
		{"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(edPub)},
		{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
	}})
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Write(jwks)
	}))
	defer srv.Close()
	keys, err := sasl.NewKeySet(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	v := sasl.NewTokenVerifier(keys, sasl.TokenOptions{Audience: "floe", Issuer: "iss", PrincipalClaim: "preferred_username"})
	sign := func(method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(method, claims)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "s-1", "preferred_username": "carol", "aud": []string{"other", "floe"}, "iss": "iss", "exp": time.Now().Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	for _, c := range []struct {
		name  string
		token string
		ok    bool
	}{
		{"RS256", sign(jwt.SigningMethodRS256, "rsa", rsaKey, claims(nil)), true},
		{"ES384", sign(jwt.SigningMethodES384, "ec", ecKey, claims(nil)), true},
		{"EdDSA", sign(jwt.SigningMethodEdDSA, "ed", edKey, claims(nil)), true},
		{"expired", sign(jwt.SigningMethodRS256, "rsa", rsaKey, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), false},
		{"no exp", sign(jwt.SigningMethodRS256, "rsa", rsaKey, claims(func(c jwt.MapClaims) { delete(c, "exp") })), false},
		{"other audience", sign(jwt.SigningMethodRS256, "rsa", rsaKey, claims(func(c jwt.MapClaims) { c["aud"] = "other" })), false},
		{"other issuer", sign(jwt.SigningMethodRS256, "rsa", rsaKey, claims(func(c jwt.MapClaims) { c["iss"] = "evil" })), false},
		{"no principal claim", sign(jwt.SigningMethodRS256, "rsa", rsaKey, claims(func(c jwt.MapClaims) { delete(c, "preferred_username") })), false},
		{"HMAC with a symmetric key", sign(jwt.SigningMethodHS256, "hmac", []byte("secret"), claims(nil)), false},
		{"wrong key for kid", sign(jwt.SigningMethodES384, "ec", mustEC(t), claims(nil)), false},
		{"unknown kid", sign(jwt.SigningMethodRS256, "nope", rsaKey, claims(nil)), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			user, exp, err := v.Verify(context.Background(), c.token)
			if c.ok != (err == nil) {
				t.Fatalf("Verify: %q, %v, %v", user, exp, err)
			}
			if c.ok && (user != "carol" || time.Until(exp) < 59*time.Minute) {
				t.Fatalf("user %q, exp %v", user, exp)
			}
		})
	}
	if n := fetches.Load(); n > 2 {
		t.Errorf("the JWKS URL was fetched %d times: an unknown kid refetches at most every 10s", n)
	}

	good := sign(jwt.SigningMethodRS256, "rsa", rsaKey, claims(nil))
	oauthSrv, err := sasl.NewServer(sasl.Config{Mechanisms: []string{sasl.OAuthBearer}, OAuth: v})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		msg string
		ok  bool
	}{
		{"n,,\x01auth=Bearer " + good + "\x01\x01", true},
		{"n,a=carol,\x01host=x\x01auth=Bearer " + good + "\x01\x01", true},
		{"n,a=dave,\x01auth=Bearer " + good + "\x01\x01", false},
		{"n,,\x01auth=Basic abc\x01\x01", false},
		{"n,,\x01auth=Bearer " + good, false},
	} {
		ex, _ := oauthSrv.Start(sasl.OAuthBearer)
		challenge, err := ex.Step(context.Background(), []byte(c.msg))
		if c.ok {
			if err != nil || !ex.Done() || ex.User() != "carol" || len(challenge) != 0 {
				t.Errorf("%q: %q, %v", c.msg, challenge, err)
			}
			continue
		}
		if err == nil {
			// RFC 7628: the error as a challenge, then failure after
			// the client's %x01.
			if ex.Done() || !strings.Contains(string(challenge), "invalid_token") {
				t.Errorf("%q: challenge %q, done %v", c.msg, challenge, ex.Done())
			}
			_, err = ex.Step(context.Background(), []byte{1})
		}
		if !errors.Is(err, sasl.ErrAuthentication) {
			t.Errorf("%q: %v, want an authentication failure", c.msg, err)
		}
	}
}

func mustEC(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
