package main

import (
	"flag"
	"net/url"
	"strconv"

	"github.com/floe-io/floe/internal/agent"
)

// registerConsoleFlags adds the web console's flag (docs/console.md).
func registerConsoleFlags(fs *flag.FlagSet, cfg *agent.Config) {
	fs.Var(consoleFlag{cfg}, "console", "serve the web console at / of the admin listener, behind --admin-token and the admin TLS when set (default true; --console=false: off)")
}

// consoleFlag is --console, stored as its negation (agent.Config's
// NoConsole, so that the zero Config serves the console). Its String is
// the value in force, so that floe config print shows one --config takes.
type consoleFlag struct{ cfg *agent.Config }

func (f consoleFlag) String() string {
	return strconv.FormatBool(f.cfg == nil || !f.cfg.NoConsole)
}

func (f consoleFlag) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	f.cfg.NoConsole = !on
	return nil
}

func (f consoleFlag) IsBoolFlag() bool { return true }

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
