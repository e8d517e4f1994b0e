package testutil_test

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoAgentImport keeps testutil importable from the packages below the
// agent: neither it nor anything it imports from this module may import
// internal/agent (agent-starting helpers belong in testutil/agenttest).
func TestNoAgentImport(t *testing.T) {
	const module = "github.com/floe-io/floe/"
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var walk func(path string, chain []string)
	walk = func(path string, chain []string) {
		if seen[path] {
			return
		}
		seen[path] = true
		chain = append(chain, path)
		if path == module+"internal/agent" {
			t.Fatalf("testutil imports internal/agent: %s", strings.Join(chain, " → "))
		}
		pkg, err := build.ImportDir(filepath.Join(root, strings.TrimPrefix(path, module)), 0)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, imp := range pkg.Imports {
			if strings.HasPrefix(imp, module) {
				walk(imp, chain)
			}
		}
	}
	walk(module+"internal/testutil", nil)
}
