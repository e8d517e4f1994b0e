package metastoretest

import (
	"bytes"
	"errors"
	"maps"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

// testUsers covers the SASL users' SCRAM credentials, and the Kafka
// listeners agents advertise in their registrations (what SASL and TLS
// listeners need from the store).
func testUsers(t *testing.T, open func(t *testing.T) metastore.Store) {
	cred := func(m metastore.ScramMechanism, b byte) metastore.ScramCredential {
		return metastore.ScramCredential{Mechanism: m, Iterations: 4096,
			Salt: []byte{b, 1}, StoredKey: bytes.Repeat([]byte{b}, 32), ServerKey: bytes.Repeat([]byte{b + 1}, 32)}
	}
	same := func(a, b metastore.ScramCredential) bool {
		return a.Mechanism == b.Mechanism && a.Iterations == b.Iterations && bytes.Equal(a.Salt, b.Salt) &&
			bytes.Equal(a.StoredKey, b.StoredKey) && bytes.Equal(a.ServerKey, b.ServerKey)
	}

	t.Run("ScramCredentials", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		if _, err := s.ScramCredential(ctx, "alice", metastore.ScramSHA512); !errors.Is(err, metastore.ErrNoCredential) {
			t.Fatalf("ScramCredential of an unknown user: %v, want ErrNoCredential", err)
		}
		if users, err := s.ScramUsers(ctx); err != nil || len(users) != 0 {
			t.Fatalf("ScramUsers of an empty store: %v, %v", users, err)
		}
		for _, c := range []struct {
			user string
			cred metastore.ScramCredential
		}{
			{"bob", cred(metastore.ScramSHA256, 1)},
			{"alice", cred(metastore.ScramSHA512, 2)},
			{"alice", cred(metastore.ScramSHA256, 3)},
			{"al", cred(metastore.ScramSHA256, 4)},
		} {
			if err := s.SetScramCredential(ctx, c.user, c.cred); err != nil {
				t.Fatalf("SetScramCredential(%s, %s): %v", c.user, c.cred.Mechanism, err)
			}
		}
		got, err := s.ScramCredential(ctx, "alice", metastore.ScramSHA512)
		if err != nil || !same(got, cred(metastore.ScramSHA512, 2)) {
			t.Fatalf("ScramCredential(alice, SHA-512): %+v, %v", got, err)
		}
		// Replacing keeps one credential per mechanism.
		if err := s.SetScramCredential(ctx, "alice", cred(metastore.ScramSHA512, 7)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ScramCredential(ctx, "alice", metastore.ScramSHA512); !same(got, cred(metastore.ScramSHA512, 7)) {
			t.Fatalf("after replacing: %+v", got)
		}
		users, err := s.ScramUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, u := range users {
			names = append(names, u.User)
			for i := 1; i < len(u.Credentials); i++ {
				if u.Credentials[i-1].Mechanism >= u.Credentials[i].Mechanism {
					t.Fatalf("credentials of %s not sorted by mechanism: %+v", u.User, u.Credentials)
				}
			}
		}
		if want := []string{"al", "alice", "bob"}; !equalStrings(names, want) {
			t.Fatalf("ScramUsers: %v, want %v", names, want)
		}
		if len(users[1].Credentials) != 2 || !same(users[1].Credentials[1], cred(metastore.ScramSHA512, 7)) {
			t.Fatalf("alice's credentials: %+v", users[1].Credentials)
		}
		if err := s.DeleteScramCredential(ctx, "alice", metastore.ScramSHA256); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteScramCredential(ctx, "alice", metastore.ScramSHA256); !errors.Is(err, metastore.ErrNoCredential) {
			t.Fatalf("deleting twice: %v, want ErrNoCredential", err)
		}
		if _, err := s.ScramCredential(ctx, "alice", metastore.ScramSHA256); !errors.Is(err, metastore.ErrNoCredential) {
			t.Fatalf("after delete: %v", err)
		}
	})

	t.Run("InvalidCredentials", func(t *testing.T) {
		s := open(t)
		bad := cred(metastore.ScramSHA256, 1)
		bad.Iterations = 100
		for name, c := range map[string]struct {
			user string
			cred metastore.ScramCredential
		}{
			"no name":         {"", cred(metastore.ScramSHA256, 1)},
			"NUL in name":     {"a\x00b", cred(metastore.ScramSHA256, 1)},
			"few iterations":  {"a", bad},
			"other mechanism": {"a", metastore.ScramCredential{Mechanism: 3, Iterations: 4096, Salt: []byte{1}, StoredKey: []byte{1}, ServerKey: []byte{1}}},
		} {
			if err := s.SetScramCredential(t.Context(), c.user, c.cred); err == nil {
				t.Errorf("%s: SetScramCredential accepted it", name)
			}
		}
	})

	t.Run("Listeners", func(t *testing.T) {
		s := open(t)
		a := agent("a", -1)
		a.Listeners = map[string]string{"PLAINTEXT": "10.0.0.1:9092", "SASL_SSL": "a.example.com:9093"}
		if got := heartbeat(t, s, a, longTTL); !maps.Equal(got.Listeners, a.Listeners) {
			t.Fatalf("Heartbeat: Listeners %v, want %v", got.Listeners, a.Listeners)
		}
		if live := liveAgents(t, s); len(live) != 1 || !maps.Equal(live[0].Listeners, a.Listeners) {
			t.Fatalf("LiveAgents: %+v, want Listeners %v", live, a.Listeners)
		}
		a.Listeners = nil // restarted with one listener
		heartbeat(t, s, a, longTTL)
		if live := liveAgents(t, s); len(live) != 1 || len(live[0].Listeners) != 0 {
			t.Fatalf("LiveAgents after a heartbeat without listeners: %+v", live)
		}
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
