package protocol_test

import (
	"os"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/protocol"
)

// TestCompatibilityDoc: docs/compatibility.md is what the registry and
// the notes generate, and every API key kmsg knows has exactly one note
// that agrees with the registry. After changing a handler's versions or
// notes: go run ./cmd/floe docs compatibility > docs/compatibility.md
func TestCompatibilityDoc(t *testing.T) {
	for _, p := range protocol.CompatibilityProblems() {
		t.Error(p)
	}
	want := protocol.CompatibilityMarkdown()
	got, err := os.ReadFile("../../docs/compatibility.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) == want {
		return
	}
	gotLines, wantLines := strings.Split(string(got), "\n"), strings.Split(want, "\n")
	for i := range max(len(gotLines), len(wantLines)) {
		var g, w string
		if i < len(gotLines) {
			g = gotLines[i]
		}
		if i < len(wantLines) {
			w = wantLines[i]
		}
		if g != w {
			t.Fatalf("docs/compatibility.md differs from the registry at line %d:\n  file:     %s\n  registry: %s\nRegenerate: go run ./cmd/floe docs compatibility > docs/compatibility.md", i+1, g, w)
		}
	}
}
