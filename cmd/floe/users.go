package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/sasl"
)

// stdin is where users set reads the password (a variable for tests).
var stdin io.Reader = os.Stdin

const usersUsage = `Usage:
  floe users set    [--data-dir DIR | --metastore URL] [--mechanism M] [--iterations N] NAME   (password on stdin)
  floe users delete [--data-dir DIR | --metastore URL] [--mechanism M] NAME
  floe users list   [--data-dir DIR | --metastore URL]

SASL users live in the metadata store as SCRAM credentials (salt,
iterations and keys; never the password). The same credentials verify
PLAIN passwords. Stop a playground first: it holds its store's lock.
`

// usersCmd manages SASL users directly in a metadata store, so that the
// first (super) user exists before any client connects.
func usersCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usersUsage)
		return flag.ErrHelp
	}
	sub := args[0]
	fs := flag.NewFlagSet("users "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usersUsage); fs.PrintDefaults() }
	metaURL := fs.String("metastore", "", "metadata store `URL` (embedded:///path or postgres://…)")
	dataDir := fs.String("data-dir", "", "a playground's data `DIR` (its metadata.db)")
	mech := fs.String("mechanism", sasl.ScramSHA512, "SCRAM-SHA-256 or SCRAM-SHA-512")
	iterations := fs.Int("iterations", sasl.DefaultIterations, "PBKDF2 iterations (4096-16384)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var name string
	if fs.NArg() > 0 {
		name = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil { // flags after the name
			return err
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("users %s: one NAME, got also %q", sub, fs.Args())
		}
	}
	if *dataDir != "" {
		abs, err := filepath.Abs(*dataDir)
		if err != nil {
			return err
		}
		*metaURL = "embedded://" + filepath.Join(abs, "metadata.db")
	}
	if *metaURL == "" {
		return errors.New("users: --data-dir or --metastore is needed")
	}
	m := metastore.ScramMechanismNamed(strings.ToUpper(*mech))
	if m == 0 {
		return fmt.Errorf("users: unknown mechanism %q (SCRAM-SHA-256 or SCRAM-SHA-512)", *mech)
	}
	if (sub == "set" || sub == "delete") && name == "" {
		return fmt.Errorf("users %s: NAME is needed", sub)
	}
	open := func() (metastore.Store, error) { return openMetastoreURL(ctx, *metaURL, nil) }
	switch sub {
	case "set":
		password, err := readPassword(stdin)
		if err != nil {
			return err
		}
		cred, err := sasl.CredentialFromPassword(m, password, *iterations)
		if err != nil {
			return err
		}
		if err := metastore.CheckScramCredential(name, cred); err != nil {
			return fmt.Errorf("users set: %w", err)
		}
		store, err := open()
		if err != nil {
			return err
		}
		defer store.Close()
		if err := store.SetScramCredential(ctx, name, cred); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s: %s credential set (%d iterations)\n", name, m, *iterations)
		return nil
	case "delete":
		store, err := open()
		if err != nil {
			return err
		}
		defer store.Close()
		if err := store.DeleteScramCredential(ctx, name, m); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s: %s credential deleted\n", name, m)
		return nil
	case "list":
		store, err := open()
		if err != nil {
			return err
		}
		defer store.Close()
		users, err := store.ScramUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tMECHANISM\tITERATIONS")
		for _, u := range users {
			for _, c := range u.Credentials {
				fmt.Fprintf(tw, "%s\t%s\t%d\n", u.User, c.Mechanism, c.Iterations)
			}
		}
		return tw.Flush()
	}
	fmt.Fprint(stderr, usersUsage)
	return fmt.Errorf("users: unknown subcommand %q", sub)
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("users set: empty password (give it on stdin)")
	}
	return line, nil
}
