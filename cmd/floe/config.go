package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"

	"github.com/floe-io/floe/internal/cliconfig"
)

// printConfigKey, in a command's context, makes parseFlags print the
// effective configuration and stop the command (floe config print).
type printConfigKey struct{}

// errConfigPrinted stops a command whose configuration was printed.
var errConfigPrinted = errors.New("configuration printed")

// envSecrets are environment variables read as secrets by the commands
// themselves, not as flags; config print says whether they are set.
var envSecrets = []struct{ name, what string }{
	{"FLOE_PEER_SECRET", "peer secret (when --peer-secret-file is not given)"},
	{"FLOE_ADMIN_TOKEN", "admin bearer token (when --admin-token-file is not given)"},
}

// parseFlags parses a command's flags from the command line, FLOE_*
// environment variables and the --config file (cliconfig.Parse). Under
// floe config print it prints the result and returns errConfigPrinted.
func parseFlags(ctx context.Context, fs *flag.FlagSet, args []string) error {
	settings, err := cliconfig.Parse(fs, args, cliconfig.Options{})
	if err != nil {
		return err
	}
	if w, ok := ctx.Value(printConfigKey{}).(io.Writer); ok {
		if err := printSettings(w, fs.Name(), settings); err != nil {
			return err
		}
		return errConfigPrinted
	}
	return nil
}

// printSettings writes settings as a YAML file that --config would accept,
// each line commented with the value's origin, secrets redacted.
func printSettings(w io.Writer, command string, settings []cliconfig.Setting) error {
	fmt.Fprintf(w, "# floe %s: effective configuration (flag > FLOE_* environment > --config file > default)\n", command)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range settings {
		origin := string(s.Origin)
		if s.Where != "" {
			origin += " " + s.Where
		}
		if s.Name == cliconfig.ConfigFlag {
			if s.Value != "" {
				fmt.Fprintf(tw, "# config: %s\t# %s\n", s.Value, origin)
			}
			continue
		}
		// Untagged, a number or a duration prints plain; the file's
		// parser takes every value as the flag's text.
		value := &yaml.Node{Kind: yaml.ScalarNode, Value: s.Redacted()}
		if value.Value == "" {
			value.Tag, value.Style = "!!str", yaml.DoubleQuotedStyle
		}
		line, err := yaml.Marshal(&yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: s.Name}, value,
		}})
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t# %s\n", strings.TrimRight(string(line), "\n"), origin)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range envSecrets {
		if _, ok := os.LookupEnv(e.name); ok {
			fmt.Fprintf(w, "# %s: %s from the environment\n", e.name, cliconfig.Redacted)
		}
	}
	return nil
}

const configUsage = `Usage: floe config print [COMMAND [ARGS] [flags]]

Prints the effective configuration of COMMAND (default: agent) as a YAML
file that --config accepts, each value commented with where it came from
(flag, env FLOE_..., file PATH or default). Passwords, tokens, URLs'
passwords and credential parameters are redacted; secret files are named,
never read.

Every flag of playground, agent, demo, inspect, jobs, groups, bench, record
and torture can also come from the environment variable FLOE_ followed by
its name in capitals with dashes as underscores (--cache-bytes:
FLOE_CACHE_BYTES), or from a YAML file given by --config FILE (or
FLOE_CONFIG) whose keys are flag names. Precedence: flag > environment >
file > default. A key in the file that is not a flag is an error.
`

// configCmd is floe config: print runs COMMAND's flag parsing under
// printConfigKey, so that every command's flags are printed as they
// would be parsed, with none of its effects.
func configCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "print" {
		fmt.Fprint(stderr, configUsage)
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			return flag.ErrHelp
		}
		return fmt.Errorf("unknown config command %q (print)", args[0])
	}
	rest := args[1:]
	if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
		rest = append([]string{"agent"}, rest...)
	}
	switch rest[0] {
	case "playground", "agent", "demo", "inspect", "jobs", "groups", "bench", "record", "torture":
	default:
		return fmt.Errorf("config print: %q takes no configuration file", rest[0])
	}
	err := run1(context.WithValue(ctx, printConfigKey{}, stdout), rest, stdout, stderr)
	switch {
	case errors.Is(err, errConfigPrinted):
		return nil
	case err == nil:
		return fmt.Errorf("config print: %s printed no configuration", rest[0])
	}
	return err
}
