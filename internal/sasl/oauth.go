package sasl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenVerifier checks OAUTHBEARER tokens: JWTs signed by a key of a
// JWKS, unexpired, and with the configured audience and issuer.
type TokenVerifier struct {
	keys *KeySet
	// Audience and Issuer, when set, must be the token's aud (one of)
	// and iss.
	audience, issuer string
	// claim names the user (default "sub").
	claim string
	// leeway allows for clock skew in exp and nbf.
	leeway time.Duration
	now    func() time.Time
}

// TokenOptions configure a TokenVerifier.
type TokenOptions struct {
	Audience, Issuer string
	// PrincipalClaim is the claim that names the user (default "sub").
	PrincipalClaim string
	// Leeway allows for clock skew (default 30s).
	Leeway time.Duration
	// Now is the clock expiry and not-before are checked against
	// (default time.Now; an agent passes its Clock).
	Now func() time.Time
}

// NewTokenVerifier returns a verifier of tokens signed by keys.
func NewTokenVerifier(keys *KeySet, opts TokenOptions) *TokenVerifier {
	if opts.PrincipalClaim == "" {
		opts.PrincipalClaim = "sub"
	}
	if opts.Leeway == 0 {
		opts.Leeway = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &TokenVerifier{keys: keys, audience: opts.Audience, issuer: opts.Issuer, claim: opts.PrincipalClaim, leeway: opts.Leeway, now: opts.Now}
}

// Verify returns the token's user and expiry.
func (v *TokenVerifier) Verify(ctx context.Context, token string) (user string, expires time.Time, err error) {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}),
		jwt.WithExpirationRequired(), jwt.WithLeeway(v.leeway), jwt.WithTimeFunc(v.now),
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return v.keys.Key(ctx, kid, t.Method.Alg())
	}, opts...)
	if err != nil {
		return "", time.Time{}, err
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return "", time.Time{}, errors.New("token has no exp")
	}
	user, _ = claims[v.claim].(string)
	if user == "" {
		return "", time.Time{}, fmt.Errorf("token has no %q claim", v.claim)
	}
	return user, exp.Time, nil
}

// oauthExchange is OAUTHBEARER as Kafka serves it (KIP-255, RFC 7628):
// the client's first message carries the token ("n,a=authzid,\x01auth=
// Bearer TOKEN\x01…\x01\x01"); success answers an empty message. A bad
// token is answered with RFC 7628's JSON error as a challenge, the client
// acknowledges it with "\x01", and the exchange fails.
type oauthExchange struct {
	v       *TokenVerifier
	user    string
	expires time.Time
	done    bool
	failure error // set once the error challenge is sent
}

func (e *oauthExchange) Step(ctx context.Context, token []byte) ([]byte, error) {
	if e.failure != nil {
		return nil, e.failure
	}
	if e.done {
		return nil, failed("OAUTHBEARER exchange already ended")
	}
	bearer, authz, err := parseOAuthMessage(token)
	if err != nil {
		return nil, failed("invalid OAUTHBEARER message: %v", err)
	}
	user, exp, err := e.v.Verify(ctx, bearer)
	if err == nil && authz != "" && authz != user {
		err = fmt.Errorf("authorization id %q differs from the token's principal %q", authz, user)
	}
	if err != nil {
		e.failure = failed("invalid token: %v", err)
		b, _ := json.Marshal(map[string]string{"status": "invalid_token"})
		return b, nil
	}
	e.user, e.expires, e.done = user, exp, true
	return nil, nil
}

func (e *oauthExchange) Done() bool         { return e.done }
func (e *oauthExchange) User() string       { return e.user }
func (e *oauthExchange) Expires() time.Time { return e.expires }

// parseOAuthMessage reads the GS2 header and the key-value pairs of an
// OAUTHBEARER client message (RFC 7628, section 3.1).
func parseOAuthMessage(msg []byte) (token, authz string, err error) {
	header, rest, ok := bytes.Cut(msg, []byte{1})
	if !ok || !bytes.HasSuffix(rest, []byte{1, 1}) {
		return "", "", errors.New("no key-value pairs")
	}
	gs2 := strings.Split(string(header), ",")
	if len(gs2) < 2 || gs2[0] != "n" && gs2[0] != "y" {
		return "", "", errors.New("bad GS2 header")
	}
	if a, ok := strings.CutPrefix(gs2[1], "a="); ok {
		authz = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(a)
	}
	for _, kv := range bytes.Split(rest[:len(rest)-2], []byte{1}) {
		k, v, _ := strings.Cut(string(kv), "=")
		if k == "auth" {
			scheme, tok, ok := strings.Cut(v, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return "", "", errors.New("auth is not a Bearer token")
			}
			token = strings.TrimSpace(tok)
		}
	}
	if token == "" {
		return "", "", errors.New("no auth=Bearer token")
	}
	return token, authz, nil
}
