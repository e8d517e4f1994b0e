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
	"sync/atomic"
	"time"
)

// KeySet is a JSON Web Key Set (RFC 7517) read from a file or a URL:
// the keys that sign OAUTHBEARER tokens. A file is read again when its
// modification time changes (checked at most every few seconds); a URL
// is fetched again every hour, and sooner (at most every 10 seconds)
// when a token names a key id the set lacks, so that rotated keys are
// picked up. The authentication that finds a refresh due does it,
// without a lock; the others meanwhile use the keys they find.
type KeySet struct {
	source string // file path or http(s) URL
	client *http.Client

	refresh, minRefresh, fileCheck time.Duration

	keys atomic.Pointer[keyMap]

	mu      sync.Mutex
	loaded  time.Time // when keys were last read (or a read was tried)
	mtime   time.Time // of the file, when keys were read
	loading bool
}

type keyMap struct {
	keys map[string]any // by kid ("" for keys without one)
	algs map[string]string
}

// maxJWKSBytes bounds a key set read from a URL.
const maxJWKSBytes = 1 << 20

// NewKeySet reads the key set at source (a file path, or an http:// or
// https:// URL) once, so that a wrong source fails at start.
func NewKeySet(ctx context.Context, source string) (*KeySet, error) {
	ks := &KeySet{source: source, client: &http.Client{Timeout: 10 * time.Second},
		refresh: time.Hour, minRefresh: 10 * time.Second, fileCheck: 2 * time.Second}
	km, mtime, err := ks.read(ctx)
	if err != nil {
		return nil, err
	}
	ks.keys.Store(km)
	ks.loaded, ks.mtime = time.Now(), mtime
	return ks, nil
}

func (ks *KeySet) isURL() bool {
	return strings.HasPrefix(ks.source, "http://") || strings.HasPrefix(ks.source, "https://")
}

// Key returns the verification key with id kid for alg.
func (ks *KeySet) Key(ctx context.Context, kid, alg string) (any, error) {
	km := ks.keys.Load()
	_, known := km.keys[kid]
	now := time.Now()
	ks.mu.Lock()
	age := now.Sub(ks.loaded)
	var due bool
	if ks.isURL() {
		due = age > ks.refresh || !known && age > ks.minRefresh
	} else {
		due = age > ks.fileCheck
	}
	due = due && !ks.loading
	seen := ks.mtime
	if due {
		ks.loading, ks.loaded = true, now
	}
	ks.mu.Unlock()
	if due {
		ks.reload(ctx, seen)
		km = ks.keys.Load()
	}
	k, ok := km.keys[kid]
	if !ok && kid == "" && len(km.keys) == 1 {
		for _, only := range km.keys {
			k, ok = only, true
		}
	}
	if !ok {
		return nil, fmt.Errorf("no key with id %q", kid)
	}
	if want := km.algs[kid]; want != "" && want != alg {
		return nil, fmt.Errorf("key %q is for %s, token is %s", kid, want, alg)
	}
	return k, nil
}

// reload reads the source again (a file only if its mtime is not seen);
// on failure the keys in use stay.
func (ks *KeySet) reload(ctx context.Context, seen time.Time) {
	mtime := seen
	if !ks.isURL() {
		if fi, err := os.Stat(ks.source); err == nil {
			mtime = fi.ModTime()
		}
	}
	if ks.isURL() || !mtime.Equal(seen) {
		if km, m, err := ks.read(ctx); err == nil {
			ks.keys.Store(km)
			mtime = m
		}
	}
	ks.mu.Lock()
	ks.mtime, ks.loading = mtime, false
	ks.mu.Unlock()
}

// read reads and parses the source.
func (ks *KeySet) read(ctx context.Context) (*keyMap, time.Time, error) {
	var (
		raw   []byte
		mtime time.Time
	)
	if ks.isURL() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.source, nil)
		if err != nil {
			return nil, mtime, err
		}
		resp, err := ks.client.Do(req)
		if err != nil {
			return nil, mtime, fmt.Errorf("JWKS %s: %w", ks.source, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, mtime, fmt.Errorf("JWKS %s: %s", ks.source, resp.Status)
		}
		if raw, err = io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes)); err != nil {
			return nil, mtime, fmt.Errorf("JWKS %s: %w", ks.source, err)
		}
	} else {
		fi, err := os.Stat(ks.source)
		if err != nil {
			return nil, mtime, fmt.Errorf("JWKS: %w", err)
		}
		if raw, err = os.ReadFile(ks.source); err != nil {
			return nil, mtime, fmt.Errorf("JWKS: %w", err)
		}
		mtime = fi.ModTime()
	}
	keys, algs, err := ParseJWKS(raw)
	if err != nil {
		return nil, mtime, fmt.Errorf("JWKS %s: %w", ks.source, err)
	}
	return &keyMap{keys: keys, algs: algs}, mtime, nil
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
