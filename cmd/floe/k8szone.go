package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// nodeLabelSource reads a label of the Kubernetes node an agent runs on,
// through the API server with the pod's service account: the zone of an
// agent in a Deployment comes from its node's topology.kubernetes.io/zone
// label, which the downward API does not expose to pods.
type nodeLabelSource struct {
	apiServer string // https://HOST:PORT
	token     []byte
	ca        *x509.CertPool
}

// serviceAccountDir is where Kubernetes mounts a pod's service account.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// inClusterNodeLabels is the source of a pod: the API server from
// KUBERNETES_SERVICE_HOST and _PORT, the service account's token and CA.
func inClusterNodeLabels(saDir string) (*nodeLabelSource, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("not in a Kubernetes pod (KUBERNETES_SERVICE_HOST and _PORT are not set)")
	}
	token, err := os.ReadFile(filepath.Join(saDir, "token"))
	if err != nil {
		return nil, fmt.Errorf("service account token: %w", err)
	}
	pem, err := os.ReadFile(filepath.Join(saDir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("service account CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("service account CA: no PEM certificate")
	}
	return &nodeLabelSource{apiServer: "https://" + net.JoinHostPort(host, port), token: token, ca: pool}, nil
}

// label returns node's label, failing if the node has none.
func (s *nodeLabelSource) label(ctx context.Context, node, label string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.apiServer+"/api/v1/nodes/"+url.PathEscape(node), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+string(s.token))
	req.Header.Set("Accept", "application/json")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.ca, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("node %s: %w", node, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return "", fmt.Errorf("node %s: %w", node, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("node %s: %s (may the service account get nodes?)", node, resp.Status)
	}
	var n struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(body, &n); err != nil {
		return "", fmt.Errorf("node %s: %w", node, err)
	}
	v, ok := n.Metadata.Labels[label]
	if !ok || v == "" {
		return "", fmt.Errorf("node %s has no label %s", node, label)
	}
	return v, nil
}
