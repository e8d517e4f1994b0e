package console_test

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

const token = "t0ken-for-the-console"

func TestTokenGuardsTheConsole(t *testing.T) {
	c := start(t, token)
	hc := browser(t)
	// Without credentials a page redirects to the login form, which is
	// public, as are the static files; a POST is refused outright.
	code, _, hdr := get(t, hc, c.base+"/topics/orders?p=1")
	if code != http.StatusSeeOther || hdr.Get("Location") != "/login?next=%2Ftopics%2Forders%3Fp%3D1" {
		t.Fatalf("GET without a token: %d to %q", code, hdr.Get("Location"))
	}
	if code, body, _ := get(t, hc, c.base+"/login"); code != http.StatusOK || !strings.Contains(body, `name="token"`) {
		t.Fatalf("GET /login: %d", code)
	}
	if code, _, _ := get(t, hc, c.base+"/static/console.js"); code != http.StatusOK {
		t.Fatalf("GET /static/console.js: %d", code)
	}
	req, _ := http.NewRequest(http.MethodPost, c.base+"/topics", strings.NewReader("name=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST without a token: %d", resp.StatusCode)
	}
	// The bearer token works, as on /metrics; a wrong one does not.
	for _, tc := range []struct {
		auth string
		code int
	}{{"Bearer " + token, http.StatusOK}, {"Bearer wrong", http.StatusSeeOther}, {"Basic " + token, http.StatusSeeOther}} {
		req, _ := http.NewRequest(http.MethodGet, c.base+"/groups", nil)
		req.Header.Set("Authorization", tc.auth)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("GET /groups with %q: %d, want %d", tc.auth, resp.StatusCode, tc.code)
		}
	}
	// A wrong token at the login form: back to the form with an error.
	if _, flash := post(t, hc, c.base, "/login", "/login", url.Values{"token": {"nope"}, "next": {"/groups"}}); flash != "err: wrong token" {
		t.Errorf("wrong token: flash %q", flash)
	}
	if code, _, _ := get(t, hc, c.base+"/groups"); code != http.StatusSeeOther {
		t.Errorf("after a failed login: GET /groups %d", code)
	}
	// The right one sets the session cookie and goes where it was asked,
	// never off the site.
	_, body, _ := get(t, hc, c.base+"/login")
	form := url.Values{"token": {token}, "next": {"//evil.example/x"}, "csrf": {csrfField.FindStringSubmatch(body)[1]}}
	req, _ = http.NewRequest(http.MethodPost, c.base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("login with next=//evil.example: %d to %q, want / ", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "floe_session" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || strings.Contains(session.Value, token) {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not the token itself", session)
	}
	if code, body, _ := get(t, hc, c.base+"/groups"); code != http.StatusOK || !strings.Contains(body, "billing") {
		t.Errorf("after login: GET /groups %d", code)
	}
	// Actions work with the session; logging out ends it.
	if _, flash := post(t, hc, c.base, "/topics", "/topics", url.Values{"name": {"after-login"}}); !strings.HasPrefix(flash, "ok: created topic after-login") {
		t.Errorf("create after login: %q", flash)
	}
	post(t, hc, c.base, "/", "/logout", url.Values{})
	if code, _, _ := get(t, hc, c.base+"/"); code != http.StatusSeeOther {
		t.Errorf("after logout: GET / %d", code)
	}
	// Another token's cookie is worthless.
	other := browser(t)
	u, _ := url.Parse(c.base)
	other.Jar.SetCookies(u, []*http.Cookie{{Name: "floe_session", Value: strings.Repeat("0", 64)}})
	if code, _, _ := get(t, other, c.base+"/"); code != http.StatusSeeOther {
		t.Errorf("forged session cookie: GET / %d", code)
	}
	// /healthz stays open and /metrics keeps wanting the bearer token.
	if code, _, _ := get(t, other, c.base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if code, _, _ := get(t, other, c.base+"/metrics"); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d", code)
	}
}

func TestPostsNeedTheCSRFToken(t *testing.T) {
	c := start(t, "")
	hc := browser(t)
	get(t, hc, c.base+"/topics") // sets the CSRF cookie
	send := func(form url.Values, site string) int {
		req, _ := http.NewRequest(http.MethodPost, c.base+"/topics", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	_, body, _ := get(t, hc, c.base+"/topics")
	good := csrfField.FindStringSubmatch(body)[1]
	for _, tc := range []struct {
		name string
		form url.Values
		site string
		code int
	}{
		{"no token", url.Values{"name": {"x1"}}, "same-origin", http.StatusForbidden},
		{"wrong token", url.Values{"name": {"x2"}, "csrf": {strings.Repeat("ab", 32)}}, "same-origin", http.StatusForbidden},
		{"not hex", url.Values{"name": {"x3"}, "csrf": {"<script>"}}, "same-origin", http.StatusForbidden},
		{"cross-site", url.Values{"name": {"x4"}, "csrf": {good}}, "cross-site", http.StatusForbidden},
		{"good", url.Values{"name": {"x5"}, "csrf": {good}}, "same-origin", http.StatusSeeOther},
	} {
		if code := send(tc.form, tc.site); code != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.code)
		}
	}
	// Another browser's token does not fit this browser's cookie.
	other := browser(t)
	get(t, other, c.base+"/topics")
	req, _ := http.NewRequest(http.MethodPost, c.base+"/topics", strings.NewReader(url.Values{"name": {"x6"}, "csrf": {good}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := other.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a token from another browser: %d", resp.StatusCode)
	}
	// Only x5 was created.
	td, err := c.adm.ListTopics(ctxWithOps(t))
	if err != nil || !td.Has("x5") || td.Has("x1") || td.Has("x2") || td.Has("x3") || td.Has("x4") || td.Has("x6") {
		t.Errorf("topics %v (%v): want x5 only besides orders", td.Names(), err)
	}
	// GET never changes anything: a GET to an action path is not routed.
	if code, _, _ := get(t, hc, c.base+"/topics/orders/delete?confirm=orders"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET on an action: %d", code)
	}
	// An oversized form is refused.
	big := url.Values{"name": {"x7"}, "csrf": {good}, "value": {strings.Repeat("v", 2<<20)}}
	if code := send(big, "same-origin"); code != http.StatusBadRequest {
		t.Errorf("a 2 MiB form: %d", code)
	}
}

// Behind the admin listener's TLS, the console is HTTPS only and its
// cookies are Secure.
func TestConsoleOverTLS(t *testing.T) {
	ca := testutil.NewCA(t, "console test CA")
	cert := ca.Issue(t, pkix.Name{CommonName: "127.0.0.1"}, "127.0.0.1")
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.AdminToken = token
		cfg.AdminTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}})
	hc := browser(t)
	hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}
	base := "https://" + a.AdminAddr()
	// Plain HTTP gets nothing useful.
	if resp, err := http.Get("http://" + a.AdminAddr() + "/"); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP: %d", resp.StatusCode)
		}
		resp.Body.Close()
	}
	_, body, hdr := get(t, hc, base+"/login")
	if !strings.Contains(body, `name="token"`) {
		t.Fatal("no login form over TLS")
	}
	if ck := hdr.Get("Set-Cookie"); !strings.Contains(ck, "floe_csrf=") || !strings.Contains(ck, "Secure") {
		t.Errorf("CSRF cookie over TLS: %q", ck)
	}
	form := url.Values{"token": {token}, "next": {"/topics"}, "csrf": {csrfField.FindStringSubmatch(body)[1]}}
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var secure bool
	for _, ck := range resp.Cookies() {
		if ck.Name == "floe_session" {
			secure = ck.Secure && ck.HttpOnly
		}
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/topics" || !secure {
		t.Errorf("login over TLS: %d to %q, Secure HttpOnly session cookie %v", resp.StatusCode, resp.Header.Get("Location"), secure)
	}
	if code, _, _ := get(t, hc, base+"/topics"); code != http.StatusOK {
		t.Errorf("after login over TLS: GET /topics %d", code)
	}
}
