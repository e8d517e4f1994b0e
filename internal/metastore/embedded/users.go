package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.UserStore = (*Store)(nil)

// scramRecord is a SCRAM credential as stored; user and mechanism are the
// key.
type scramRecord struct {
	Iterations int32  `json:"iterations"`
	Salt       []byte `json:"salt"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

func scramKey(user string, m metastore.ScramMechanism) []byte {
	k := make([]byte, 0, len(user)+2)
	k = append(k, user...)
	return append(k, 0, byte(m))
}

func decodeScram(k, v []byte) (string, metastore.ScramCredential, error) {
	var r scramRecord
	if len(k) < 2 || k[len(k)-2] != 0 {
		return "", metastore.ScramCredential{}, fmt.Errorf("scram key %q: %w", k, errCorrupt)
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return "", metastore.ScramCredential{}, fmt.Errorf("scram credential: %w: %v", errCorrupt, err)
	}
	return string(k[:len(k)-2]), metastore.ScramCredential{
		Mechanism: metastore.ScramMechanism(k[len(k)-1]), Iterations: r.Iterations,
		Salt: r.Salt, StoredKey: r.StoredKey, ServerKey: r.ServerKey,
	}, nil
}

// ScramCredential implements metastore.UserStore.
func (s *Store) ScramCredential(ctx context.Context, user string, m metastore.ScramMechanism) (metastore.ScramCredential, error) {
	var c metastore.ScramCredential
	err := s.view(ctx, func(tx kv.Tx) error {
		k := scramKey(user, m)
		v := tx.Bucket([]byte(bucketScram)).Get(k)
		if v == nil {
			return metastore.ErrNoCredential
		}
		var err error
		_, c, err = decodeScram(k, v)
		return err
	})
	if err != nil {
		return metastore.ScramCredential{}, fmt.Errorf("scram credential of %q: %w", user, err)
	}
	return c, nil
}

// ScramUsers implements metastore.UserStore. Keys sort by user name
// first, then mechanism (a name never contains the 0 that ends it).
func (s *Store) ScramUsers(ctx context.Context) ([]metastore.UserScram, error) {
	var out []metastore.UserScram
	err := s.view(ctx, func(tx kv.Tx) error {
		out = nil
		return tx.Bucket([]byte(bucketScram)).ForEach(func(k, v []byte) error {
			user, c, err := decodeScram(k, v)
			if err != nil {
				return err
			}
			c.Salt, c.StoredKey, c.ServerKey = bytes.Clone(c.Salt), bytes.Clone(c.StoredKey), bytes.Clone(c.ServerKey)
			if n := len(out); n > 0 && out[n-1].User == user {
				out[n-1].Credentials = append(out[n-1].Credentials, c)
				return nil
			}
			out = append(out, metastore.UserScram{User: user, Credentials: []metastore.ScramCredential{c}})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("scram users: %w", err)
	}
	return out, nil
}

// SetScramCredential implements metastore.UserStore.
func (s *Store) SetScramCredential(ctx context.Context, user string, c metastore.ScramCredential) error {
	if err := metastore.CheckScramCredential(user, c); err != nil {
		return fmt.Errorf("set scram credential of %q: %w", user, err)
	}
	v, err := json.Marshal(scramRecord{Iterations: c.Iterations, Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey})
	if err != nil {
		return err
	}
	err = s.update(ctx, func(tx kv.Tx) error {
		return tx.Bucket([]byte(bucketScram)).Put(scramKey(user, c.Mechanism), v)
	})
	if err != nil {
		return fmt.Errorf("set scram credential of %q: %w", user, err)
	}
	return nil
}

// DeleteScramCredential implements metastore.UserStore.
func (s *Store) DeleteScramCredential(ctx context.Context, user string, m metastore.ScramMechanism) error {
	err := s.update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket([]byte(bucketScram))
		k := scramKey(user, m)
		if b.Get(k) == nil {
			return metastore.ErrNoCredential
		}
		return b.Delete(k)
	})
	if err != nil {
		return fmt.Errorf("delete scram credential of %q: %w", user, err)
	}
	return nil
}
