package main

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestZoneFromNodeLabel: the agent reads its node's zone label from the
// API server with the pod's service account token, trusting only the
// service account's CA.
func TestZoneFromNodeLabel(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sa-token" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		switch r.URL.Path {
		case "/api/v1/nodes/node-a":
			w.Write([]byte(`{"kind":"Node","metadata":{"name":"node-a","labels":{"topology.kubernetes.io/zone":"eu-west-1b","kubernetes.io/os":"linux"}}}`))
		case "/api/v1/nodes/node-b":
			w.Write([]byte(`{"kind":"Node","metadata":{"name":"node-b","labels":{}}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	sa := t.TempDir()
	os.WriteFile(filepath.Join(sa, "token"), []byte("sa-token"), 0o600)
	os.WriteFile(filepath.Join(sa, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	u, _ := url.Parse(srv.URL)
	t.Setenv("KUBERNETES_SERVICE_HOST", u.Hostname())
	t.Setenv("KUBERNETES_SERVICE_PORT", u.Port())
	src, err := inClusterNodeLabels(sa)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if zone, err := src.label(ctx, "node-a", "topology.kubernetes.io/zone"); err != nil || zone != "eu-west-1b" {
		t.Fatalf("zone %q, %v", zone, err)
	}
	for node, want := range map[string]string{"node-b": "no label", "node-c": "404", "../x": "404"} {
		if _, err := src.label(ctx, node, "topology.kubernetes.io/zone"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", node, err, want)
		}
	}
	src.token = []byte("wrong")
	if _, err := src.label(ctx, "node-a", "topology.kubernetes.io/zone"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("wrong token: %v", err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := inClusterNodeLabels(sa); err == nil {
		t.Error("outside a pod: no error")
	}
}
