package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil"
)

// kcat (librdkafka) on SASL_SSL with SCRAM-SHA-512 and on SSL with a
// client certificate; the Python clients on SASL_PLAINTEXT with PLAIN and
// SCRAM; kafkajs with SCRAM. Failures are the clients' own errors.

// runCmdErr runs a command that may fail and returns its combined
// output and error.
func runCmdErr(t *testing.T, ctx context.Context, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestKcatSASLSSLScram(t *testing.T) {
	kcat := testutil.RequireClient(t, "kcat")
	a := startSecureAgent(t, nil)
	ctx := context.Background()
	auth := func(password string) []string {
		return []string{"-b", a.ListenerAddr("SASL_SSL"), "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
			"-X", "sasl.username=" + saslUser, "-X", "sasl.password=" + password, "-X", "ssl.ca.location=" + a.caFile}
	}
	var in, want strings.Builder
	for i := range 50 {
		fmt.Fprintf(&in, "k%d:v%d\n", i, i)
		fmt.Fprintf(&want, "k%d:v%d:%d\n", i, i, i)
	}
	runCmd(t, ctx, in.String(), kcat, append(auth(saslPassword), "-P", "-t", "kcat-scram", "-K:")...)
	got := runCmd(t, ctx, "", kcat, append(auth(saslPassword), "-C", "-t", "kcat-scram", "-e", "-q", "-o", "beginning",
		"-X", "fetch.wait.max.ms=100", "-f", `%k:%s:%o\n`)...)
	if got != want.String() {
		t.Fatalf("consumed through SASL_SSL:\n%s", firstDiff(want.String(), got))
	}

	t.Run("wrong password", func(t *testing.T) {
		out, err := runCmdErr(t, ctx, "", kcat, append(auth("wrong"), "-L", "-m", "5")...)
		if err == nil || !strings.Contains(out, "Authentication failed") {
			t.Fatalf("kcat -L with a wrong password: %v\n%s", err, out)
		}
		t.Logf("kcat: %s", lastLine(out))
	})
	t.Run("plaintext against TLS", func(t *testing.T) {
		out, err := runCmdErr(t, ctx, "", kcat, "-b", a.ListenerAddr("SASL_SSL"), "-X", "security.protocol=SASL_PLAINTEXT",
			"-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username="+saslUser, "-X", "sasl.password="+saslPassword, "-L", "-m", "5")
		if err == nil {
			t.Fatalf("kcat without TLS against SASL_SSL succeeded:\n%s", out)
		}
		t.Logf("kcat: %s", lastLine(out))
	})
	// The agent still serves.
	runCmd(t, ctx, "", kcat, append(auth(saslPassword), "-L", "-t", "kcat-scram")...)
}

func TestKcatMutualTLS(t *testing.T) {
	kcat := testutil.RequireClient(t, "kcat")
	a := startSecureAgent(t, nil)
	ctx := context.Background()
	ssl := func(cert, key string) []string {
		return []string{"-b", a.ListenerAddr("SSL"), "-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + a.caFile,
			"-X", "ssl.certificate.location=" + cert, "-X", "ssl.key.location=" + key}
	}
	runCmd(t, ctx, "one\ntwo\n", kcat, append(ssl(a.clientCertFile, a.clientKey), "-P", "-t", "kcat-mtls")...)
	got := runCmd(t, ctx, "", kcat, append(ssl(a.clientCertFile, a.clientKey), "-C", "-t", "kcat-mtls", "-e", "-q", "-o", "beginning", "-X", "fetch.wait.max.ms=100")...)
	if got != "one\ntwo\n" {
		t.Fatalf("consumed through SSL: %q", got)
	}

	t.Run("certificate from another CA", func(t *testing.T) {
		other := startSecureAgent(t, nil) // its CA did not sign a's client certificates
		out, err := runCmdErr(t, ctx, "", kcat, append(ssl(other.clientCertFile, other.clientKey), "-L", "-m", "5")...)
		if err == nil {
			t.Fatalf("kcat with another CA's certificate succeeded:\n%s", out)
		}
		t.Logf("kcat: %s", lastLine(out))
	})
	runCmd(t, ctx, "", kcat, append(ssl(a.clientCertFile, a.clientKey), "-L", "-t", "kcat-mtls")...)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// pythonSASL runs testdata/sasl_roundtrip.py with one client and
// mechanism on the SASL_PLAINTEXT listener.
func pythonSASL(t *testing.T, a *secureAgent, client, module, mechanism, password, topic string) (consumed []string, authErr string) {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		testutil.MissingClient(t, "%s: %v", debianPython, err)
	}
	if out, err := exec.Command(debianPython, "-c", "import "+module).CombinedOutput(); err != nil {
		testutil.MissingClient(t, "%s cannot import %s: %v\n%s", debianPython, module, err, out)
	}
	ctx := context.Background()
	createTopic(t, ctx, a.ListenerAddr("PLAINTEXT"), topic, 1)
	out, err := runCmdErr(t, ctx, "", debianPython, filepath.Join("testdata", "sasl_roundtrip.py"), client,
		a.ListenerAddr("SASL_PLAINTEXT"), topic, "SASL_PLAINTEXT", mechanism, saslUser, password)
	var res struct {
		Consumed []string `json:"consumed"`
		Error    string   `json:"error"`
	}
	line := lastLine(out)
	if jerr := json.Unmarshal([]byte(line), &res); jerr != nil {
		if password != saslPassword {
			// kafka-python raises on a failed authentication.
			return nil, line
		}
		t.Fatalf("sasl_roundtrip.py %s: %v\n%s", client, err, out)
	}
	return res.Consumed, res.Error
}

func TestPythonSASL(t *testing.T) {
	a := startSecureAgent(t, nil)
	for _, c := range []struct{ client, module string }{{"confluent", "confluent_kafka"}, {"kafka", "kafka"}} {
		for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
			t.Run(c.client+"/"+mech, func(t *testing.T) {
				topic := "py-" + c.client + "-" + strings.ToLower(mech)
				consumed, authErr := pythonSASL(t, a, c.client, c.module, mech, saslPassword, topic)
				if authErr != "" || len(consumed) != 20 || consumed[0] != "v0" || consumed[19] != "v19" {
					t.Fatalf("consumed %v, error %q", consumed, authErr)
				}
			})
		}
		t.Run(c.client+"/wrong password", func(t *testing.T) {
			consumed, authErr := pythonSASL(t, a, c.client, c.module, "SCRAM-SHA-512", "wrong", "py-"+c.client+"-wrong")
			if authErr == "" || len(consumed) > 0 {
				t.Fatalf("consumed %v with a wrong password", consumed)
			}
			t.Logf("%s: %s", c.client, authErr)
		})
	}
}

func TestKafkaJSSASL(t *testing.T) {
	node := testutil.RequireClient(t, "node")
	if _, err := os.Stat(filepath.Join(kafkajsDir, "node_modules", "kafkajs", "package.json")); err != nil {
		testutil.MissingClient(t, "kafkajs is not installed (run npm ci in %s, as scripts/test does): %v", kafkajsDir, err)
	}
	a := startSecureAgent(t, nil)
	ctx := context.Background()
	run := func(t *testing.T, listener, topic, mechanism, password, cafile string) (offsets []struct {
		Partition int32  `json:"partition"`
		High      string `json:"high"`
	}, authErr string) {
		t.Helper()
		out, err := runCmdErr(t, ctx, "", node, filepath.Join(kafkajsDir, "sasl.js"), a.ListenerAddr(listener), topic, mechanism, saslUser, password, cafile)
		var res struct {
			Offsets []struct {
				Partition int32  `json:"partition"`
				High      string `json:"high"`
			} `json:"offsets"`
			Error string `json:"error"`
		}
		if jerr := json.Unmarshal([]byte(lastLine(out)), &res); jerr != nil {
			t.Fatalf("sasl.js: %v, %v\n%s", err, jerr, out)
		}
		return res.Offsets, res.Error
	}
	for _, c := range []struct{ name, listener, mechanism, cafile string }{
		{"SCRAM-SHA-256", "SASL_PLAINTEXT", "scram-sha-256", ""},
		{"SCRAM-SHA-512 over TLS", "SASL_SSL", "scram-sha-512", a.caFile},
		{"PLAIN", "SASL_PLAINTEXT", "plain", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			topic := "kafkajs-" + c.mechanism
			offsets, authErr := run(t, c.listener, topic, c.mechanism, saslPassword, c.cafile)
			if authErr != "" || len(offsets) != 1 || offsets[0].High != "10" {
				t.Fatalf("offsets %+v, error %q", offsets, authErr)
			}
			if got := consumeAll(t, ctx, a.ListenerAddr("PLAINTEXT"), topic); len(got) != 10 || string(got[9].Value) != "v9" {
				t.Fatalf("franz-go read %d records", len(got))
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		_, authErr := run(t, "SASL_PLAINTEXT", "kafkajs-wrong", "scram-sha-512", "wrong", "")
		if !strings.Contains(authErr, "SASL") {
			t.Fatalf("error %q, want KafkaJS's SASL authentication error", authErr)
		}
		t.Logf("kafkajs: %s", authErr)
	})
}
