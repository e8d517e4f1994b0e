package sasl

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// KeySet is a JSON Web Key Set (RFC 7517) read from a file or a URL:
// the keys that sign OAUTHBEARER tokens. A file is read again when its
// modification time changes (checked at most every few seconds); a URL
// is fetched again every RefreshInterval, and sooner (at most once per
// MinRefresh) when a token names a key id the set lacks, so that rotated
// keys are picked up.
type KeySet struct {
	source string // file path or http(s) URL
	client *http.Client

	refresh, minRefresh time.Duration

	mu      sync.Mutex
	keys    map[string]any // by kid ("" for keys without one)
	algs    map[string]string
	loaded  time.Time // when keys were last read
	checked time.Time // when the file's mtime was last looked at
	mtime   time.Time
}

// maxJWKSBytes bounds a key set read from a URL.
const maxJWKSBytes = 1 << 20

// NewKeySet reads the key set at source (a file path, or an http:// or
// https:// URL) once, so that a wrong source fails at start.
func NewKeySet(ctx context.Context, source string) (*KeySet, error) {
	ks := &KeySet{source: source, client: &http.Client{Timeout: 10 * time.Second}, refresh: time.Hour, minRefresh: 10 * time.Second}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if err := ks.load(ctx); err != nil {
		return nil, err
	}
	return ks, nil
}

func (ks *KeySet) isURL() bool {
	return strings.HasPrefix(ks.source, "http://") || strings.HasPrefix(ks.source, "https://")
}

// Key returns the verification key with id kid for alg.
func (ks *KeySet) Key(ctx context.Context, kid, alg string) (any, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	now := time.Now()
	if ks.isURL() {
		_, known := ks.keys[kid]
		if now.Sub(ks.loaded) > ks.refresh || !known && now.Sub(ks.loaded) > ks.minRefresh {
			if err := ks.load(ctx); err != nil && ks.keys == nil {
				return nil, err
			}
		}
	} else if now.Sub(ks.checked) > 2*time.Second {
		ks.checked = now
		if fi, err := os.Stat(ks.source); err == nil && !fi.ModTime().Equal(ks.mtime) {
			ks.load(ctx) // on failure, the old keys stay
		}
	}
	k, ok := ks.keys[kid]
	if !ok && kid == "" && len(ks.keys) == 1 {
		for _, only := range ks.keys {
			k, ok = only, true
		}
	}
	if !ok {
		return nil, fmt.Errorf("no key with id %q", kid)
	}
	if want := ks.algs[kid]; want != "" && want != alg {
		return nil, fmt.Errorf("key %q is for %s, token is %s", kid, want, alg)
	}
	return k, nil
}

// load reads the source; ks.mu is held.
func (ks *KeySet) load(ctx context.Context) error {
	var raw []byte
	if ks.isURL() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.source, nil)
		if err != nil {
			return err
		}
		resp, err := ks.client.Do(req)
		if err != nil {
			return fmt.Errorf("JWKS %s: %w", ks.source, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("JWKS %s: %s", ks.source, resp.Status)
		}
		if raw, err = io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes)); err != nil {
			return fmt.Errorf("JWKS %s: %w", ks.source, err)
		}
		ks.loaded = time.Now()
	} else {
		fi, err := os.Stat(ks.source)
		if err != nil {
			return fmt.Errorf("JWKS: %w", err)
		}
		if raw, err = os.ReadFile(ks.source); err != nil {
			return fmt.Errorf("JWKS: %w", err)
		}
		ks.mtime, ks.loaded, ks.checked = fi.ModTime(), time.Now(), time.Now()
	}
	keys, algs, err := ParseJWKS(raw)
	if err != nil {
		return fmt.Errorf("JWKS %s: %w", ks.source, err)
	}
	ks.keys, ks.algs = keys, algs
	return nil
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS returns the public signing keys of a JWK set by key id, and
// the algorithm each is restricted to ("" for any of its type). RSA, EC
// (P-256, P-384, P-521) and Ed25519 keys are read; others are skipped.
func ParseJWKS(raw []byte) (map[string]any, map[string]string, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, nil, err
	}
	keys, algs := map[string]any{}, map[string]string{}
	b64 := base64.RawURLEncoding
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var key any
		switch k.Kty {
		case "RSA":
			n, err1 := b64.DecodeString(k.N)
			e, err2 := b64.DecodeString(k.E)
			if err := errors.Join(err1, err2); err != nil || len(e) > 4 {
				return nil, nil, fmt.Errorf("key %q: bad RSA parameters", k.Kid)
			}
			key = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		case "EC":
			var curve elliptic.Curve
			switch k.Crv {
			case "P-256":
				curve = elliptic.P256()
			case "P-384":
				curve = elliptic.P384()
			case "P-521":
				curve = elliptic.P521()
			default:
				continue
			}
			x, err1 := b64.DecodeString(k.X)
			y, err2 := b64.DecodeString(k.Y)
			if err := errors.Join(err1, err2); err != nil {
				return nil, nil, fmt.Errorf("key %q: bad EC parameters", k.Kid)
			}
			size := (curve.Params().BitSize + 7) / 8
			if len(x) != size || len(y) != size {
				return nil, nil, fmt.Errorf("key %q: bad EC coordinates", k.Kid)
			}
			point := append(append([]byte{4}, x...), y...)
			pk, err := ecdsa.ParseUncompressedPublicKey(curve, point)
			if err != nil {
				return nil, nil, fmt.Errorf("key %q: %w", k.Kid, err)
			}
			key = pk
		case "OKP":
			if k.Crv != "Ed25519" {
				continue
			}
			x, err := b64.DecodeString(k.X)
			if err != nil || len(x) != ed25519.PublicKeySize {
				return nil, nil, fmt.Errorf("key %q: bad Ed25519 key", k.Kid)
			}
			key = ed25519.PublicKey(x)
		default:
			continue
		}
		keys[k.Kid], algs[k.Kid] = key, k.Alg
	}
	if len(keys) == 0 {
		return nil, nil, errors.New("no signing keys")
	}
	return keys, algs, nil
}
