package sasl_test

import (
	"context"
	"os"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/sasl"
)

// FuzzExchange feeds any two client messages to each mechanism: whatever
// arrives before authentication must fail cleanly, never panic, and
// never authenticate without the password or a signed token.
func FuzzExchange(f *testing.F) {
	store := users{}
	for _, m := range []metastore.ScramMechanism{metastore.ScramSHA256, metastore.ScramSHA512} {
		cred, err := sasl.CredentialFromPassword(m, "pw", 4096)
		if err != nil {
			f.Fatal(err)
		}
		store.SetScramCredential(context.Background(), "u", cred)
	}
	keys := writeKeys(f)
	srv, err := sasl.NewServer(sasl.Config{Mechanisms: sasl.All, Users: store,
		OAuth: sasl.NewTokenVerifier(keys, sasl.TokenOptions{})})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(1), []byte("n,,n=u,r=abc"), []byte("c=biws,r=abcXYZ,p=AAAA"))
	f.Add(uint8(0), []byte("\x00u\x00nope"), []byte(""))
	f.Add(uint8(3), []byte("n,a=u,\x01auth=Bearer a.b.c\x01\x01"), []byte("\x01"))
	f.Add(uint8(2), []byte("y,,n=u=2Cx,r=1,ext=1"), []byte("c=eSws,r=1,p="))
	f.Fuzz(func(t *testing.T, mech uint8, first, second []byte) {
		ex, err := srv.Start(sasl.All[int(mech)%len(sasl.All)])
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := ex.Step(ctx, first); err != nil {
			return
		}
		if _, err := ex.Step(ctx, second); err == nil && ex.Done() {
			t.Fatalf("authenticated as %q by %q, %q", ex.User(), first, second)
		}
	})
}

func writeKeys(f *testing.F) *sasl.KeySet {
	path := f.TempDir() + "/jwks.json"
	jwks := `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`
	if err := writeFile(path, jwks); err != nil {
		f.Fatal(err)
	}
	ks, err := sasl.NewKeySet(context.Background(), path)
	if err != nil {
		f.Fatal(err)
	}
	return ks
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
