// Package transcript runs readable scenario files for state machines:
// each file in a directory is a sequence of blocks
//
//	command args...
//	----
//	expected output
//
// separated by blank lines; lines starting with # are comments. A test
// gives each file a fresh runner that turns one command into output lines;
// with rewrite set, the files are rewritten with the actual outputs for
// review instead of being checked.
package transcript

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Run runs every file matching glob as a subtest named after the file.
// newRunner gives each file its own state.
func Run(t *testing.T, glob string, rewrite bool, newRunner func() func(t *testing.T, cmd string) []string) {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts match %s: %v", glob, err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runFile(t, f, rewrite, newRunner()) })
	}
}

type block struct {
	pre      []string // comments and blank lines before the command
	cmd      string
	expected []string
	line     int
}

func parse(t *testing.T, path string) (blocks []block, trailer []string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var pre []string
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			pre = append(pre, line)
			continue
		}
		b := block{pre: pre, cmd: line, line: n}
		pre = nil
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s:%d: expected ---- after command", path, n)
		}
		n++
		for sc.Scan() {
			n++
			if sc.Text() == "" {
				pre = append(pre, "")
				break
			}
			b.expected = append(b.expected, sc.Text())
		}
		blocks = append(blocks, b)
	}
	return blocks, pre
}

func runFile(t *testing.T, path string, rewrite bool, run func(t *testing.T, cmd string) []string) {
	blocks, trailer := parse(t, path)
	var out strings.Builder
	failed := false
	for _, b := range blocks {
		for _, p := range b.pre {
			out.WriteString(p + "\n")
		}
		got := run(t, b.cmd)
		out.WriteString(b.cmd + "\n----\n")
		for _, l := range got {
			out.WriteString(l + "\n")
		}
		if !rewrite && strings.Join(got, "\n") != strings.Join(b.expected, "\n") {
			failed = true
			t.Errorf("%s:%d: %s\n got:\n  %s\n want:\n  %s", path, b.line, b.cmd,
				strings.Join(got, "\n  "), strings.Join(b.expected, "\n  "))
		}
	}
	for _, p := range trailer {
		out.WriteString(p + "\n")
	}
	if rewrite {
		text := strings.TrimRight(out.String(), "\n") + "\n"
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if failed {
		t.Log("run with -rewrite to update expectations")
	}
}
