// Package cliconfig gives a command's flags three more sources besides
// the command line: FLOE_* environment variables and a YAML file named by
// --config (or FLOE_CONFIG). The precedence is flag > environment > file >
// default, decided per flag. It also reports where each effective value
// came from, with secrets redacted, for `floe config print`.
//
// It knows nothing of any command's flags: every flag of the flag set it
// is given is configurable the same way. It never prints a secret.
package cliconfig

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ConfigFlag is the flag that names the YAML file.
const ConfigFlag = "config"

// EnvPrefix starts every environment variable read for a flag.
const EnvPrefix = "FLOE_"

// maxFileBytes bounds the configuration file read.
const maxFileBytes = 1 << 20

// Origin says where an effective value came from.
type Origin string

const (
	FromFlag    Origin = "flag"
	FromEnv     Origin = "env"
	FromFile    Origin = "file"
	FromDefault Origin = "default"
)

// Setting is one flag's effective value.
type Setting struct {
	Name   string
	Value  string // as the flag prints it; Redacted for display
	Origin Origin
	// Where names the source: the environment variable or the file
	// (empty for flags and defaults).
	Where string
	Usage string
}

// Redacted is Value with secrets hidden (see Redact).
func (s Setting) Redacted() string { return Redact(s.Name, s.Value) }

// Options tune Parse.
type Options struct {
	// LookupEnv reads the environment (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// ReadFile reads the configuration file (default os.ReadFile, at
	// most 1 MiB).
	ReadFile func(string) ([]byte, error)
}

// EnvName is the environment variable of flag name: FLOE_ and the name
// in upper case with dashes as underscores (cache-bytes: FLOE_CACHE_BYTES).
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse parses args into fs, then gives every flag not set on the command
// line its FLOE_* environment variable's value, or else the value of its
// key in the YAML file that --config (or FLOE_CONFIG) names. It registers
// the --config flag if fs lacks it. A key of the file that names no flag
// is an error that names it, and so is a value a flag refuses. It returns
// every flag's effective value and origin, sorted by name.
func Parse(fs *flag.FlagSet, args []string, opts Options) ([]Setting, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.ReadFile == nil {
		opts.ReadFile = readBounded
	}
	if fs.Lookup(ConfigFlag) == nil {
		fs.String(ConfigFlag, "", "YAML `FILE` of flag values, keyed by flag name (also FLOE_CONFIG); precedence: flag > FLOE_* environment > file > default")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	origin := map[string]Setting{}
	fs.Visit(func(f *flag.Flag) { origin[f.Name] = Setting{Origin: FromFlag} })

	var fileValues map[string]string
	var file string
	if _, set := origin[ConfigFlag]; set {
		file = fs.Lookup(ConfigFlag).Value.String()
	} else if v, ok := opts.LookupEnv(EnvName(ConfigFlag)); ok && v != "" {
		file = v
		if err := fs.Set(ConfigFlag, v); err != nil {
			return nil, err
		}
		origin[ConfigFlag] = Setting{Origin: FromEnv, Where: EnvName(ConfigFlag)}
	}
	if file != "" {
		raw, err := opts.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
		if fileValues, err = parseFile(raw); err != nil {
			return nil, fmt.Errorf("config file %s: %w", file, err)
		}
		for _, key := range slices.Sorted(mapKeys(fileValues)) {
			switch {
			case key == ConfigFlag:
				return nil, fmt.Errorf("config file %s: key %q: a config file cannot name another", file, key)
			case fs.Lookup(key) == nil:
				return nil, fmt.Errorf("config file %s: unknown key %q (not a flag of floe %s)", file, key, fs.Name())
			}
		}
	}

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if _, set := origin[f.Name]; set {
			return
		}
		env := EnvName(f.Name)
		if v, ok := opts.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				// The value may be a secret: name the variable, not it.
				errs = append(errs, fmt.Errorf("environment %s: invalid value for --%s", env, f.Name))
				return
			}
			origin[f.Name] = Setting{Origin: FromEnv, Where: env}
			return
		}
		if v, ok := fileValues[f.Name]; ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("config file %s: key %q: invalid value for --%s: %w", file, f.Name, f.Name, redactErr(f.Name, v, err)))
				return
			}
			origin[f.Name] = Setting{Origin: FromFile, Where: file}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []Setting
	fs.VisitAll(func(f *flag.Flag) {
		s, ok := origin[f.Name]
		if !ok {
			s.Origin = FromDefault
		}
		s.Name, s.Value, s.Usage = f.Name, f.Value.String(), f.Usage
		out = append(out, s)
	})
	return out, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileBytes)
	}
	return raw, nil
}

// parseFile reads a YAML mapping of flag names to scalars (or lists of
// scalars, joined with commas, for flags that take lists).
func parseFile(raw []byte) (map[string]string, error) {
	out := map[string]string{}
	if len(bytes.TrimSpace(raw)) == 0 {
		return out, nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("not a YAML document")
	}
	m := doc.Content[0]
	if m.Kind == yaml.ScalarNode && m.Tag == "!!null" {
		return out, nil
	}
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping of flag names to values", m.Line)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: a key must be a flag name", k.Line)
		}
		key := k.Value
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("line %d: key %q given twice", k.Line, key)
		}
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Tag == "!!null" {
				return nil, fmt.Errorf("line %d: key %q has no value", k.Line, key)
			}
			out[key] = v.Value
		case yaml.SequenceNode:
			var items []string
			for _, it := range v.Content {
				if it.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("line %d: key %q: a list may hold only plain values", it.Line, key)
				}
				items = append(items, it.Value)
			}
			out[key] = strings.Join(items, ",")
		default:
			return nil, fmt.Errorf("line %d: key %q: want a value or a list of values", v.Line, key)
		}
	}
	return out, nil
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// redactErr keeps a secret value out of a flag's parse error.
func redactErr(name, value string, err error) error {
	if Redact(name, value) != value {
		return errors.New("value refused (not shown: secret)")
	}
	return err
}

// Redacted replaces a secret.
const Redacted = "<redacted>"

// secretWords mark flags whose values are secrets themselves; flags
// ending in -file name a file, whose path is shown and content never read
// here.
var secretWords = []string{"password", "token", "secret", "passphrase"}

// secretParams are URL query parameters that carry credentials.
var secretParams = []string{"password", "pass", "secret", "token", "key", "sig", "signature", "credential", "sslpassword"}

// Redact hides what in value is a secret, for display: the whole value of
// a flag whose name says it is one (password, token, secret), the
// password of URLs, and credential query parameters of URLs, also inside
// comma-separated lists.
func Redact(name, value string) string {
	if value == "" {
		return value
	}
	lower := strings.ToLower(name)
	if !strings.HasSuffix(lower, "-file") {
		for _, w := range secretWords {
			if strings.Contains(lower, w) {
				return Redacted
			}
		}
	}
	if !strings.Contains(value, "://") && !strings.Contains(value, "@") && !strings.Contains(value, "=") {
		return value
	}
	parts := strings.Split(value, ",")
	for i, p := range parts {
		parts[i] = redactURL(p)
	}
	return strings.Join(parts, ",")
}

// redactURL hides a URL's password and credential query parameters; a
// value that does not parse as a URL but looks like it carries user
// information is hidden whole.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		if strings.Contains(s, "@") || strings.Contains(s, "password=") {
			return Redacted
		}
		return s
	}
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			changed = true
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			lk := strings.ToLower(k)
			for _, p := range secretParams {
				if strings.Contains(lk, p) {
					q.Set(k, "xxxxx")
					changed = true
					break
				}
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	if !changed {
		return s // as given
	}
	// url.Parse lowers the scheme's case; keep the one given.
	return s[:len(u.Scheme)] + u.String()[len(u.Scheme):]
}
