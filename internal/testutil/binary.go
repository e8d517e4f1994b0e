package testutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// RunWithFloeBinary is a TestMain body for packages that run floe as
// separate processes: it builds cmd/floe once into a temporary directory,
// stores its path in *bin, runs the tests and removes the binary. name
// prefixes its messages.
func RunWithFloeBinary(m *testing.M, name string, bin *string) {
	dir, err := os.MkdirTemp("", "floe-"+name+"-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "floe")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	build := exec.CommandContext(ctx, "go", "build", "-o", *bin, "github.com/floe-io/floe/cmd/floe")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	err = build.Run()
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+": go build floe:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
