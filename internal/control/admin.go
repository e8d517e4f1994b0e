package control

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/floe-io/floe/internal/journal"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminHandler is the admin API of a Server, for operators:
//
//	POST   /api/vclusters          {"name": NAME} → {"name": NAME, "key": KEY}
//	GET    /api/vclusters          → [{"name", "created_at", "sessions", "epoch"}]
//	GET    /api/vclusters/NAME/schedule → {"epoch", "version", "jobs", "rings", "members", "in_grace", "changes", "moves"}
//	DELETE /api/vclusters/NAME
//	GET    /metrics                Prometheus: per-vcluster counters (floe_control_vcluster_*, floe_control_schedule_*)
//
// A non-empty token must be sent as "Authorization: Bearer TOKEN".
func AdminHandler(s *Server, token string, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/vclusters", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name string `json:"name"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&req); err != nil {
			httpError(w, http.StatusBadRequest, "malformed request: "+err.Error())
			return
		}
		if err := journal.CheckName(req.Name); err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		key, err := s.CreateVCluster(r.Context(), req.Name)
		switch {
		case errors.Is(err, journal.ErrVClusterExists):
			httpError(w, http.StatusConflict, err.Error())
			return
		case err != nil:
			log.Error("create virtual cluster", "vcluster", req.Name, "err", err)
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"name": req.Name, "key": key})
	})
	mux.HandleFunc("GET /api/vclusters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.VClusters())
	})
	mux.HandleFunc("GET /api/vclusters/{name}/schedule", func(w http.ResponseWriter, r *http.Request) {
		info, ok := s.Schedule(r.PathValue("name"))
		if !ok {
			httpError(w, http.StatusNotFound, "virtual cluster not served here")
			return
		}
		writeJSON(w, http.StatusOK, info)
	})
	mux.HandleFunc("DELETE /api/vclusters/{name}", func(w http.ResponseWriter, r *http.Request) {
		err := s.DeleteVCluster(r.Context(), r.PathValue("name"))
		switch {
		case errors.Is(err, journal.ErrUnknownVCluster):
			httpError(w, http.StatusNotFound, err.Error())
		case err != nil:
			log.Error("delete virtual cluster", "vcluster", r.PathValue("name"), "err", err)
			httpError(w, http.StatusInternalServerError, err.Error())
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	reg := prometheus.NewRegistry()
	// The process's memory and the Go heap, next to the vclusters': their
	// states are held in memory (docs/operations.md, sizing).
	reg.MustRegister(NewCollector(s), NewScheduleCollector(s),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	if token == "" {
		return mux
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(r.Header.Get("Authorization"))), want) != 1 {
			httpError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
