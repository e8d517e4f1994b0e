package control_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/testutil"
)

// TestAdminAPI creates, lists, scrapes and deletes a vcluster through the
// admin API, with and without its token.
func TestAdminAPI(t *testing.T) {
	cp := newControl(t)
	hs := httptest.NewServer(control.AdminHandler(cp.server, "tok", testutil.Logger(t)))
	defer hs.Close()
	do := func(method, path, body, token string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, hs.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := do("POST", "/api/vclusters", `{"name":"x"}`, ""); code != http.StatusUnauthorized {
		t.Errorf("create without token: %d", code)
	}
	if code, _ := do("GET", "/api/vclusters", "", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("list with a wrong token: %d", code)
	}
	for _, bad := range []string{`{"name":"Upper"}`, `{"name":""}`, `{"name":"a/b"}`, `not json`, `{"name":"` + strings.Repeat("a", 64) + `"}`} {
		if code, body := do("POST", "/api/vclusters", bad, "tok"); code != http.StatusBadRequest {
			t.Errorf("create %s: %d %s", bad, code, body)
		}
	}
	code, body := do("POST", "/api/vclusters", `{"name":"shop"}`, "tok")
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	var created struct{ Name, Key string }
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.Key == "" {
		t.Fatalf("create answered %s (%v)", body, err)
	}
	if code, _ := do("POST", "/api/vclusters", `{"name":"shop"}`, "tok"); code != http.StatusConflict {
		t.Errorf("second create: %d", code)
	}
	c := cp.client(t, "shop", created.Key)
	if _, err := c.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	code, body = do("GET", "/api/vclusters", "", "tok")
	if code != http.StatusOK || !strings.Contains(body, `"name":"shop"`) || !strings.Contains(body, `"sessions":1`) {
		t.Errorf("list: %d %s", code, body)
	}
	code, body = do("GET", "/metrics", "", "tok")
	if code != http.StatusOK || !strings.Contains(body, `floe_control_vcluster_commands_total{vcluster="shop"} 1`) {
		t.Errorf("metrics: %d %s", code, body)
	}
	// The states are in memory: the process's memory is on /metrics too.
	for _, m := range []string{"process_resident_memory_bytes ", "go_memstats_heap_inuse_bytes ", `floe_control_vcluster_state_keys{vcluster="shop"} `, `floe_control_vcluster_state_bytes{vcluster="shop"} `} {
		if !strings.Contains(body, m) {
			t.Errorf("metrics: no %s", m)
		}
	}
	// A topic's records, at least: its name and its partition states.
	if m := regexp.MustCompile(`floe_control_vcluster_state_bytes\{vcluster="shop"\} (\d+)`).FindStringSubmatch(body); m == nil || len(m[1]) < 3 {
		t.Errorf("state_bytes of a vcluster with a topic: %v", m)
	}
	if code, _ := do("DELETE", "/api/vclusters/shop", "", "tok"); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	if code, _ := do("DELETE", "/api/vclusters/shop", "", "tok"); code != http.StatusNotFound {
		t.Errorf("second delete: %d", code)
	}
	if _, err := c.Topics(t.Context()); err == nil {
		t.Error("a deleted vcluster still answers")
	}
	if code, _ := do("GET", "/healthz", "", ""); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
}
