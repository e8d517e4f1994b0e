package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/floe-io/floe/internal/protocol"
)

const docsUsage = `Usage: floe docs compatibility

Prints docs/compatibility.md, the Kafka API conformance table, from the
handler registry: go run ./cmd/floe docs compatibility > docs/compatibility.md
`

// docsCmd prints documents generated from the code.
func docsCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 || args[0] != "compatibility" {
		fmt.Fprint(stderr, docsUsage)
		return flag.ErrHelp
	}
	if problems := protocol.CompatibilityProblems(); len(problems) > 0 {
		return fmt.Errorf("the registry and the notes disagree: %v", problems)
	}
	_, err := io.WriteString(stdout, protocol.CompatibilityMarkdown())
	return err
}
