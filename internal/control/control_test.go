package control_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/metastore/remote"
	"github.com/floe-io/floe/internal/testutil"
)

// controlPlane is a control plane on loopback with its journal in a fresh
// PostgreSQL database.
type controlPlane struct {
	dbURL  string
	server *control.Server
	addr   string
}

func startControl(t *testing.T, dbURL string) *controlPlane {
	t.Helper()
	return startControlIn(t, dbURL, t.TempDir())
}

// startControlIn is startControl with the vclusters' state under dir.
func startControlIn(t *testing.T, dbURL, dir string) *controlPlane {
	t.Helper()
	return startControlOpts(t, dbURL, 0, func(o *control.Options) { o.Dir = dir })
}

func newControl(t *testing.T) *controlPlane {
	t.Helper()
	return startControl(t, testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_"))
}

// client opens a client of vcluster with key.
func (cp *controlPlane) client(t *testing.T, vcluster, key string) *remote.Client {
	t.Helper()
	c, err := remote.Open(t.Context(), remote.Options{Addr: cp.addr, VCluster: vcluster, Key: key, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestContract runs the metastore contract suite against the control
// plane: every store the suite opens is a new vcluster on one server,
// reached over TCP, journaled in PostgreSQL.
func TestContract(t *testing.T) {
	cp := newControl(t)
	var n atomic.Int64
	metastoretest.Run(t, func(t *testing.T) metastore.Store {
		name := "contract-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
		name = name[:min(len(name), 50)] + "-" + itoa(n.Add(1))
		key, err := cp.server.CreateVCluster(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		return cp.client(t, name, key)
	})
}

func itoa(n int64) string {
	const digits = "0123456789"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{digits[n%10]}, b...)
	}
	return string(b)
}
