package main

import (
	"flag"
	"net/url"
	"strconv"

	"github.com/floe-io/floe/internal/agent"
)

// registerConsoleFlags adds the web console's flag (docs/console.md).
func registerConsoleFlags(fs *flag.FlagSet, cfg *agent.Config) {
	fs.BoolFunc("console", "serve the web console at / of the admin listener, behind --admin-token and the admin TLS when set (default true; --console=false: off)", func(s string) error {
		on, err := strconv.ParseBool(s)
		cfg.NoConsole = !on
		return err
	})
}

// consoleURL is the console's address for the playground's banner.
func consoleURL(adminAddr string, off bool) string {
	if adminAddr == "" || off {
		return "off"
	}
	return "http://" + adminAddr + "/"
}

// redactedURL is what the console shows of a metadata store URL: scheme,
// user, host and path, never a password or the query (which may hold
// one).
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	out := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	if u.User != nil {
		out.User = url.User(u.User.Username())
	}
	return out.String()
}
