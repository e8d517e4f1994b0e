package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// adminURLFile is the file in a playground's data directory that names
// its admin listener while it runs, so that commands given --data-dir
// reach the running playground instead of its locked metadata store.
const adminURLFile = "admin-url"

// maxAdminAnswer bounds what the commands read from an admin API.
const maxAdminAnswer = 256 << 20

// adminFlags are the flags of commands that read a running agent's admin
// API: where it is, and what proves the client may ask.
type adminFlags struct {
	addr, tokenFile, caFile string
}

func (a *adminFlags) register(fs *flag.FlagSet, def string) {
	fs.StringVar(&a.addr, "admin", def, "admin `HOST:PORT` (or https://HOST:PORT) of a running agent, read through its admin API")
	fs.StringVar(&a.tokenFile, "admin-token-file", "", "`FILE` holding the agent's admin bearer token (also FLOE_ADMIN_TOKEN)")
	fs.StringVar(&a.caFile, "admin-ca", "", "PEM `FILE` of the CA that signed an https admin listener's certificate (default: the system's)")
}

// runningAdmin returns the admin URL a running playground wrote in
// dataDir, or "" when there is none.
func runningAdmin(dataDir string) string {
	if dataDir == "" {
		return ""
	}
	raw, err := os.ReadFile(filepath.Join(dataDir, adminURLFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(raw))
}

// tryJSON writes, indented, the JSON answer of path on the admin API of
// --admin, or else of the playground running in dataDir. ok is false
// when neither is given, or when dataDir's playground is gone (the
// caller then reads the data offline).
func (a *adminFlags) tryJSON(ctx context.Context, dataDir, path string, query url.Values, w io.Writer) (ok bool, err error) {
	addr, fromDir := a.addr, false
	if addr == "" {
		addr, fromDir = runningAdmin(dataDir), true
	}
	if addr == "" {
		return false, nil
	}
	body, err := a.get(ctx, addr, path, query)
	if err != nil {
		var nerr *net.OpError
		if fromDir && errors.As(err, &nerr) {
			return false, nil // a playground that crashed left its file
		}
		return true, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, body, "", "  "); err != nil {
		return true, fmt.Errorf("agent admin %s%s: bad answer: %w", addr, path, err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return true, err
}

// get reads path from the admin API at addr, sending the bearer token
// when one is configured.
func (a *adminFlags) get(ctx context.Context, addr, path string, query url.Values) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u := strings.TrimSuffix(base, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	token, err := secretFrom(a.tokenFile, "FLOE_ADMIN_TOKEN")
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	if token != nil {
		req.Header.Set("Authorization", "Bearer "+string(token))
	}
	client, err := a.client()
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent admin %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("agent admin %s%s: %w", addr, path, err)
	}
	if len(body) > maxAdminAnswer {
		return nil, fmt.Errorf("agent admin %s%s: answer larger than %d bytes", addr, path, maxAdminAnswer)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("agent admin %s%s: %s: %s", addr, path, resp.Status, bytes.TrimSpace(body[:min(len(body), 1024)]))
	}
	return body, nil
}

func (a *adminFlags) client() (*http.Client, error) {
	if a.caFile == "" {
		return &http.Client{}, nil
	}
	pem, err := os.ReadFile(a.caFile)
	if err != nil {
		return nil, fmt.Errorf("admin CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("admin CA %s: no PEM certificate", a.caFile)
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}, nil
}
