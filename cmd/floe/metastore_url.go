package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/metastore/postgres"
	"github.com/floe-io/floe/internal/metastore/remote"
)

// openMetastoreURL opens the metadata store a --metastore URL names, by
// scheme: embedded:///abs/path/to/file (one process) or a standard
// PostgreSQL URL, postgres://user@host:port/db?sslmode=disable (a cluster
// of agents), or floe://HOST:PORT[,HOST:PORT...]/VCLUSTER?key=KEY (a
// virtual cluster of `floe control`; with several addresses, tried in
// turn until the one leading the vcluster answers). Errors show the URL without its password or key.
func openMetastoreURL(ctx context.Context, raw string, log *slog.Logger) (metastore.Store, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the URL, password included.
		return nil, errors.New("metadata store: --metastore is not a URL")
	}
	switch {
	case u.Scheme == embedded.URLScheme:
		s, err := embedded.OpenURL(raw)
		if err != nil {
			return nil, err
		}
		return s, nil
	case u.Scheme == remote.URLScheme:
		s, err := remote.OpenURL(ctx, raw, log)
		if err != nil {
			return nil, err
		}
		return s, nil
	case slices.Contains(postgres.URLSchemes, u.Scheme):
		s, err := postgres.Open(ctx, raw, postgres.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("metadata store %s: unknown scheme %q (want %s:///path, postgres://… or %s://HOST:PORT/VCLUSTER?key=KEY)", redactedURL(raw), u.Scheme, embedded.URLScheme, remote.URLScheme)
}
