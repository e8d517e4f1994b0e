package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/inspect"
	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/sharecoord"
)

// The admin API's read-only JSON endpoints for `floe inspect segment` and
// `floe groups` against a running agent (the embedded metadata store is
// locked by the agent that uses it). Both sit behind the admin token.

// maxInspectKey bounds the object key /api/segment accepts.
const maxInspectKey = 256

// maxInspectObject bounds the object /api/segment reads into memory
// (segments are 8 MiB by default; compacted objects may be larger).
const maxInspectObject = 256 << 20

// inspectSegment answers GET /api/segment?key=segments/ID[&records=true]:
// the segment object decoded as `floe inspect segment` prints it. Only
// keys under the bucket's data prefixes are read.
func (a *Agent) inspectSegment(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	if !validDataKey(key) {
		http.Error(w, "key: want segments/ID", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if size, known, err := a.store.ObjectSize(ctx, key); err == nil && known && size > maxInspectObject {
		http.Error(w, fmt.Sprintf("object of %d bytes: larger than the %d the admin API decodes; use floe inspect segment --bucket", size, maxInspectObject), http.StatusRequestEntityTooLarge)
		return
	}
	object, err := a.bucket.GetRange(ctx, key, 0, -1)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		http.Error(w, "no such object", http.StatusNotFound)
		return
	case err != nil:
		// The error may name the bucket's host: it goes to the log.
		a.log.Warn("admin: read segment failed", "key", key, "err", err)
		http.Error(w, "bucket unavailable", http.StatusServiceUnavailable)
		return
	}
	seg, err := inspect.DecodeSegment(ctx, key, object, a.store, r.URL.Query().Get("records") == "true")
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	writeJSON(w, seg)
}

// validDataKey accepts keys under the bucket's data prefixes, of a
// bounded length, without path tricks.
func validDataKey(key string) bool {
	if len(key) > maxInspectKey || strings.Contains(key, "..") || strings.ContainsAny(key, "\\\x00") {
		return false
	}
	for _, p := range jobs.DataPrefixes {
		if rest, ok := strings.CutPrefix(key, p); ok && rest != "" && !strings.Contains(rest, "/") {
			return true
		}
	}
	return false
}

// inspectGroups answers GET /api/groups[?group=NAME...]: every consumer
// group of the cluster (or the named ones) with its committed offsets,
// end offsets and lag, then every share group with stored state, read
// from the metadata store, with what this agent holds in memory laid
// over it (members, acquisitions, delivery counts).
func (a *Agent) inspectGroups(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	rows, err := inspect.Groups(ctx, a.store, r.URL.Query()["group"])
	if err == nil {
		var shares []inspect.GroupRow
		var live func(string) sharecoord.LiveGroup
		if a.shares != nil {
			live = a.shares.Live
		}
		shares, err = inspect.ShareGroupsLive(ctx, a.store, r.URL.Query()["group"], live)
		rows = append(rows, shares...)
	}
	if err != nil {
		a.log.Warn("admin: read groups failed", "err", err)
		http.Error(w, "metadata store unavailable", http.StatusServiceUnavailable)
		return
	}
	if rows == nil {
		rows = []inspect.GroupRow{}
	}
	writeJSON(w, rows)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
