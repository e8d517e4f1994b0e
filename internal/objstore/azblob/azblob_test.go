package azblob_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/azblob"
	"github.com/floe-io/floe/internal/objstore/objstoretest"
	"github.com/floe-io/floe/internal/testutil"
)

// The tests run against Azurite (or Azure) when FLOE_TEST_AZBLOB_ENDPOINT
// is set (`scripts/services azblob` starts Azurite and prints it), with
// credentials from FLOE_TEST_AZBLOB_ACCOUNT and FLOE_TEST_AZBLOB_KEY, else
// the AZURE_STORAGE_* variables. They create the container
// FLOE_TEST_AZBLOB_CONTAINER (default floe-test) if missing and work under
// a fresh random prefix. Without the endpoint they skip, unless
// FLOE_REQUIRE_SERVICES=1.
func options(t *testing.T) azblob.Options {
	t.Helper()
	endpoint := testutil.RequireService(t, "FLOE_TEST_AZBLOB_ENDPOINT", "azblob")
	container := os.Getenv("FLOE_TEST_AZBLOB_CONTAINER")
	if container == "" {
		container = "floe-test"
	}
	o := azblob.Options{
		Container: container, Endpoint: endpoint,
		Account: os.Getenv("FLOE_TEST_AZBLOB_ACCOUNT"), Key: os.Getenv("FLOE_TEST_AZBLOB_KEY"),
	}
	b, err := azblob.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Client().Create(context.Background(), nil)
	if err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		t.Fatalf("create container %s: %v", container, err)
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	o.Prefix = "floe-test-" + hex.EncodeToString(r[:]) + "/"
	return o
}

func open(t *testing.T, o azblob.Options) *azblob.Bucket {
	t.Helper()
	b, err := azblob.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		if err := b.List(ctx, "", func(oi objstore.ObjectInfo) error {
			keys = append(keys, oi.Key)
			return nil
		}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, k := range keys {
			if err := b.Delete(ctx, k); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return b
}

func TestContract(t *testing.T) {
	base := options(t)
	var n atomic.Int64
	fresh := func(t *testing.T) *azblob.Bucket {
		o := base
		o.Prefix = fmt.Sprintf("%s%03d/", base.Prefix, n.Add(1))
		return open(t, o)
	}
	t.Run("Plain", func(t *testing.T) {
		objstoretest.Run(t, func(t *testing.T) objstore.Bucket { return fresh(t) })
	})
	t.Run("Resilient", func(t *testing.T) {
		objstoretest.Run(t, func(t *testing.T) objstore.Bucket {
			return objstore.Resilient(fresh(t), objstore.ResilientOptions{})
		})
	})
}

func TestPrefixAndPages(t *testing.T) {
	ctx := context.Background()
	o := options(t)
	root := open(t, o)
	o.Prefix += "sub/"
	o.ListPageSize = 3
	sub := open(t, o)
	var want []string
	for i := range 10 {
		key := fmt.Sprintf("k%02d", i)
		want = append(want, key)
		if err := sub.Put(ctx, key, []byte(key)); err != nil {
			t.Fatal(err)
		}
	}
	if err := root.Put(ctx, "sub-not-nested", nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := sub.List(ctx, "", func(oi objstore.ObjectInfo) error {
		got = append(got, oi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("List in pages of 3 = %q, want %q", got, want)
	}
	if data, err := root.GetRange(ctx, "sub/k03", 0, -1); err != nil || string(data) != "k03" {
		t.Errorf("GetRange(sub/k03) through the parent prefix = %q, %v", data, err)
	}
	if _, err := sub.GetRange(ctx, "sub-not-nested", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("GetRange of a key outside the prefix = %v, want ErrNotFound", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	t.Setenv("AZURE_STORAGE_ACCOUNT", "")
	t.Setenv("AZURE_STORAGE_KEY", "")
	if _, err := azblob.Open(azblob.Options{Container: "floe"}); err == nil {
		t.Error("Open without credentials: no error")
	}
	if _, err := azblob.Open(azblob.Options{}); err == nil {
		t.Error("Open without a container: no error")
	}
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "BlobEndpoint=https://x.blob.core.windows.net;SharedAccessSignature=sv=1")
	if _, err := azblob.Open(azblob.Options{Container: "floe"}); err == nil {
		t.Error("Open with a SAS connection string: no error")
	}
}
