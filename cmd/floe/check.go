package main

// floe check: the verdict of the checker (internal/checker) on a history
// that floe record (or, later, floe torture) wrote.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/floe-io/floe/internal/checker"
	"github.com/floe-io/floe/internal/history"
)

// errAnomalies is returned when a history has anomalies, so that the
// command's exit status is non-zero.
var errAnomalies = errors.New("the history has anomalies")

func checkCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	quote := fs.Bool("lines", false, "print the text of every history line an anomaly cites")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: floe check HISTORY.jsonl [--json] [--lines]")
		fmt.Fprintln(stderr, "\nChecks a recorded history (floe record) for lost, duplicated and reordered")
		fmt.Fprintln(stderr, "records, inconsistent offsets, consumers that skip or go back, and group")
		fmt.Fprintln(stderr, "commits that regress or skip; prints each anomaly with the history lines")
		fmt.Fprintln(stderr, "that prove it. Exits 0 only when there is none. See docs/correctness.md.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(reorderFlags(args, map[string]bool{"json": true, "lines": true})); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("check: want one history file")
	}
	res, lines, err := checkFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var quoteLine func(int) string
	if *quote {
		quoteLine = func(n int) string {
			if n < 1 || n > len(lines) {
				return ""
			}
			return lines[n-1]
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else if err := res.WriteText(stdout, quoteLine); err != nil {
		return err
	}
	if !res.Valid {
		return fmt.Errorf("%s: %w (%d)", fs.Arg(0), errAnomalies, len(res.Anomalies))
	}
	return nil
}

func checkFile(path string) (checker.Result, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return checker.Result{}, nil, err
	}
	ops, err := history.Read(bytes.NewReader(data))
	if err != nil {
		return checker.Result{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	return checker.Check(ops), strings.Split(string(data), "\n"), nil
}

// reorderFlags moves flags after positional arguments to the front, so
// that "floe check FILE --json" works as well as "floe check --json FILE".
// bool names flags that take no value.
func reorderFlags(args []string, bool map[string]bool) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			name := a[1:]
			if len(name) > 0 && name[0] == '-' {
				name = name[1:]
			}
			if !bool[name] && !containsEq(name) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func containsEq(s string) bool {
	for _, c := range s {
		if c == '=' {
			return true
		}
	}
	return false
}
