package compat

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil/agenttest"

	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/metastore"
	floesasl "github.com/floe-io/floe/internal/sasl"
	"github.com/floe-io/floe/internal/testutil"
)

// Authentication on the Kafka listeners, with real clients: TLS (and
// mutual TLS), SASL PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER, re-
// authentication, and the failures each client reports in its own way.

const (
	saslUser     = "alice"
	saslPassword = "alice-secret"
	jwtAudience  = "floe-test"
	jwtIssuer    = "https://issuer.floe.test"
)

// secureAgent is an agent with a listener of every security protocol,
// one SCRAM user (both mechanisms, which PLAIN checks too) and a JWKS for
// OAUTHBEARER, with the PEM files clients need in dir.
type secureAgent struct {
	*agenttest.Agent
	dir                       string
	ca                        *testutil.CA
	caFile                    string
	clientCertFile, clientKey string // CN=alice-client,OU=clients,O=Floe, signed by ca
	clientCert                tls.Certificate
	jwtKey                    *ecdsa.PrivateKey
}

func startSecureAgent(t *testing.T, adjust func(*agent.Config)) *secureAgent {
	t.Helper()
	dir := t.TempDir()
	ca := testutil.NewCA(t, "floe test CA")
	server := ca.Issue(t, pkix.Name{CommonName: "127.0.0.1"}, "127.0.0.1", "localhost")
	certFile, keyFile := testutil.WriteCert(t, server, dir, "server")
	client := ca.Issue(t, pkix.Name{CommonName: "alice-client", OrganizationalUnit: []string{"clients"}, Organization: []string{"Floe"}})
	clientCertFile, clientKey := testutil.WriteCert(t, client, dir, "client")

	jwtKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwksFile := filepath.Join(dir, "jwks.json")
	writeJWKS(t, jwksFile, "k1", &jwtKey.PublicKey)
	keys, err := floesasl.NewKeySet(context.Background(), jwksFile)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := agent.NewCertReloader(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := agent.ParsePrincipalRules(`RULE:^CN=([^,]+),OU=clients,.*$/$1/L,DEFAULT`)
	if err != nil {
		t.Fatal(err)
	}
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.Listeners, err = agent.ParseListeners(
			"PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0", "", "")
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = agent.ServerTLS(certs, ca.Pool, false)
		cfg.PrincipalRules = rules
		cfg.SASLMechanisms = floesasl.All
		cfg.OAuth = floesasl.NewTokenVerifier(keys, floesasl.TokenOptions{Audience: jwtAudience, Issuer: jwtIssuer})
		if adjust != nil {
			adjust(cfg)
		}
	}})
	for _, m := range []metastore.ScramMechanism{metastore.ScramSHA256, metastore.ScramSHA512} {
		cred, err := floesasl.CredentialFromPassword(m, saslPassword, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Store.SetScramCredential(context.Background(), saslUser, cred); err != nil {
			t.Fatal(err)
		}
	}
	return &secureAgent{Agent: a, dir: dir, ca: ca, caFile: ca.WriteCA(t, dir, "ca.pem"),
		clientCertFile: clientCertFile, clientKey: clientKey, clientCert: client, jwtKey: jwtKey}
}

func writeJWKS(t *testing.T, path, kid string, pub *ecdsa.PublicKey) {
	t.Helper()
	point, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	set := map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
		"x": b64(point[1:33]), "y": b64(point[33:]),
	}}}
	b, _ := json.Marshal(set)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// token signs a JWT for sub with key, valid until exp.
func token(t *testing.T, key *ecdsa.PrivateKey, sub, aud string, exp time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"sub": sub, "aud": aud, "iss": jwtIssuer, "exp": exp.Unix(), "iat": time.Now().Unix(),
	})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (a *secureAgent) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: a.ca.Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// franzClient is a franz-go client of one listener.
func (a *secureAgent) franzClient(t *testing.T, listener string, mech sasl.Mechanism, tlsCfg *tls.Config, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(a.ListenerAddr(listener)), kgo.AllowAutoTopicCreation(),
		kgo.RequestRetries(1), kgo.RetryTimeout(5 * time.Second), kgo.ProducerLinger(0)}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	if tlsCfg != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsCfg))
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// roundTrip produces one record and reads it back with the same client.
func roundTrip(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("hello " + topic)}).FirstErr(); err != nil {
		return err
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}})
	defer cl.RemoveConsumePartitions(map[string][]int32{topic: {0}})
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, e := range fs.Errors() {
			return e.Err
		}
		if fs.NumRecords() > 0 {
			if got := string(fs.Records()[0].Value); got != "hello "+topic {
				t.Fatalf("read %q from %s", got, topic)
			}
			return nil
		}
	}
}

// TestSASLFranz authenticates franz-go with every mechanism on the SASL
// listeners (and over TLS), checks that Metadata shows each client the
// agent on the listener it came through, and that bad credentials fail
// with the client's authentication error while the agent serves others.
func TestSASLFranz(t *testing.T) {
	a := startSecureAgent(t, nil)
	ctx := context.Background()
	scram256 := scram.Auth{User: saslUser, Pass: saslPassword}.AsSha256Mechanism()
	scram512 := scram.Auth{User: saslUser, Pass: saslPassword}.AsSha512Mechanism()
	good := []struct {
		name, listener string
		mech           sasl.Mechanism
		tls            bool
	}{
		{"SCRAM-SHA-256", "SASL_PLAINTEXT", scram256, false},
		{"SCRAM-SHA-512", "SASL_SSL", scram512, true},
		{"PLAIN", "SASL_PLAINTEXT", plain.Auth{User: saslUser, Pass: saslPassword}.AsMechanism(), false},
		{"OAUTHBEARER", "SASL_SSL", oauth.Auth{Token: token(t, a.jwtKey, "bob", jwtAudience, time.Now().Add(time.Hour))}.AsMechanism(), true},
		{"mTLS", "SSL", nil, true},
	}
	for _, c := range good {
		t.Run(c.name, func(t *testing.T) {
			var tlsCfg *tls.Config
			if c.tls {
				tlsCfg = a.tlsConfig()
				if c.mech == nil {
					tlsCfg.Certificates = []tls.Certificate{a.clientCert}
				}
			}
			cl := a.franzClient(t, c.listener, c.mech, tlsCfg)
			if err := roundTrip(t, ctx, cl, "franz-"+c.name); err != nil {
				t.Fatalf("round trip: %v", err)
			}
			meta, err := kadm.NewClient(cl).BrokerMetadata(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(a.ListenerAddr(c.listener))
			if len(meta.Brokers) != 1 || strconv.Itoa(int(meta.Brokers[0].Port)) != port {
				t.Fatalf("Metadata through %s shows brokers %+v, want port %s", c.listener, meta.Brokers, port)
			}
		})
	}

	bad := []struct {
		name, listener string
		mech           sasl.Mechanism
		tls            *tls.Config
		want           error // nil: any error
	}{
		{"wrong SCRAM password", "SASL_PLAINTEXT", scram.Auth{User: saslUser, Pass: "wrong"}.AsSha512Mechanism(), nil, kerr.SaslAuthenticationFailed},
		{"unknown SCRAM user", "SASL_SSL", scram.Auth{User: "mallory", Pass: "x"}.AsSha256Mechanism(), a.tlsConfig(), kerr.SaslAuthenticationFailed},
		{"wrong PLAIN password", "SASL_PLAINTEXT", plain.Auth{User: saslUser, Pass: "wrong"}.AsMechanism(), nil, kerr.SaslAuthenticationFailed},
		// Kafka answers a bad token with RFC 7628's error challenge;
		// franz-go reports the unexpected challenge.
		{"expired token", "SASL_SSL", oauth.Auth{Token: token(t, a.jwtKey, "bob", jwtAudience, time.Now().Add(-time.Hour))}.AsMechanism(), a.tlsConfig(), nil},
		{"token for another audience", "SASL_PLAINTEXT", oauth.Auth{Token: token(t, a.jwtKey, "bob", "other", time.Now().Add(time.Hour))}.AsMechanism(), nil, nil},
		{"token signed by another key", "SASL_PLAINTEXT", oauth.Auth{Token: token(t, mustKey(t), "bob", jwtAudience, time.Now().Add(time.Hour))}.AsMechanism(), nil, nil},
		{"no SASL on a SASL listener", "SASL_PLAINTEXT", nil, nil, nil},
		{"SASL on a plaintext listener", "PLAINTEXT", scram512, nil, kerr.IllegalSaslState},
		{"plaintext against TLS", "SASL_SSL", scram512, nil, nil},
		{"client certificate from another CA", "SSL", nil, func() *tls.Config {
			cfg := a.tlsConfig()
			eve := testutil.NewCA(t, "other CA").Issue(t, pkix.Name{CommonName: "eve"})
			// Go's client sends no certificate the server's CAs did not
			// sign (and would be served as ANONYMOUS); OpenSSL's do.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &eve, nil }
			return cfg
		}(), nil},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			cl := a.franzClient(t, c.listener, c.mech, c.tls)
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := cl.Ping(ctx)
			if err == nil {
				_, err = kadm.NewClient(cl).ListTopics(ctx)
			}
			if err == nil {
				t.Fatal("the client was served")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			t.Logf("client error: %v", err)
		})
	}
	// The agent still serves good clients.
	if err := roundTrip(t, ctx, a.franzClient(t, "SASL_PLAINTEXT", scram512, nil), "franz-after"); err != nil {
		t.Fatalf("after the failures: %v", err)
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSASLBeforeAuthentication: on a SASL listener only ApiVersions,
// SaslHandshake and SaslAuthenticate are served before authentication;
// anything else closes the connection, as Kafka does.
func TestSASLBeforeAuthentication(t *testing.T) {
	a := startSecureAgent(t, nil)
	c := testutil.Dial(t, a.ListenerAddr("SASL_PLAINTEXT"))
	versions := c.Do(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	if versions.ErrorCode != 0 || len(versions.ApiKeys) == 0 {
		t.Fatalf("ApiVersions before authentication: %+v", versions)
	}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = "GSSAPI"
	resp := c.Do(hs).(*kmsg.SASLHandshakeResponse)
	if resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code || len(resp.SupportedMechanisms) != len(floesasl.All) {
		t.Fatalf("SaslHandshake GSSAPI: %+v", resp)
	}
	if err := c.ExpectClosed(5 * time.Second); err != nil {
		t.Fatalf("after an unsupported mechanism: %v", err)
	}

	c = testutil.Dial(t, a.ListenerAddr("SASL_PLAINTEXT"))
	c.Send(kmsg.NewPtrMetadataRequest())
	if err := c.ExpectClosed(5 * time.Second); err != nil {
		t.Fatalf("Metadata before authentication: %v", err)
	}

	c = testutil.Dial(t, a.ListenerAddr("SASL_PLAINTEXT"))
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.SetVersion(1)
	auth.SASLAuthBytes = []byte("\x00alice\x00x")
	if r := c.Do(auth).(*kmsg.SASLAuthenticateResponse); r.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("SaslAuthenticate before SaslHandshake: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if err := c.ExpectClosed(5 * time.Second); err != nil {
		t.Fatalf("after SaslAuthenticate before SaslHandshake: %v", err)
	}

	// A frame larger than Kafka's sasl.server.max.receive.size before
	// authentication closes the connection before it is read.
	c = testutil.Dial(t, a.ListenerAddr("SASL_PLAINTEXT"))
	if err := c.WriteRaw([]byte{0, 0x10, 0, 0}); err != nil { // 1 MiB announced
		t.Fatal(err)
	}
	if err := c.ExpectClosed(5 * time.Second); err != nil {
		t.Fatalf("a 1 MiB frame before authentication: %v", err)
	}
}

// TestSASLReauthentication: with connections.max.reauth.ms, SaslAuthenticate
// v1+ tells the client its session lifetime (capped by the token's
// expiry); franz-go re-authenticates on the same connection and keeps
// working, and a client that does not is disconnected at its next request.
func TestSASLReauthentication(t *testing.T) {
	a := startSecureAgent(t, func(cfg *agent.Config) { cfg.MaxReauth = 1500 * time.Millisecond })
	ctx := context.Background()
	cl := a.franzClient(t, "SASL_PLAINTEXT", scram.Auth{User: saslUser, Pass: saslPassword}.AsSha512Mechanism(), nil)
	if err := roundTrip(t, ctx, cl, "reauth"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "reauth", Value: []byte("again")}).FirstErr(); err != nil {
		t.Fatalf("after the session lifetime: %v", err)
	}

	// A raw client authenticates with PLAIN, is told its lifetime, and
	// is disconnected when it sends a request after it.
	c := testutil.Dial(t, a.ListenerAddr("SASL_PLAINTEXT"))
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = "PLAIN"
	if r := c.Do(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		t.Fatalf("SaslHandshake: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.SetVersion(2)
	auth.SASLAuthBytes = []byte("\x00" + saslUser + "\x00" + saslPassword)
	r := c.Do(auth).(*kmsg.SASLAuthenticateResponse)
	if r.ErrorCode != 0 || r.SessionLifetimeMillis <= 0 || r.SessionLifetimeMillis > 1500 {
		t.Fatalf("SaslAuthenticate: error %v, session lifetime %dms", kerr.ErrorForCode(r.ErrorCode), r.SessionLifetimeMillis)
	}
	c.Do(kmsg.NewPtrMetadataRequest()) // served within the session
	time.Sleep(1600 * time.Millisecond)
	c.Send(kmsg.NewPtrMetadataRequest())
	if err := c.ExpectClosed(5 * time.Second); err != nil {
		t.Fatalf("request after the session expired: %v", err)
	}

	// An OAUTHBEARER session ends with its token, sooner than the limit.
	tc := testutil.Dial(t, a.ListenerAddr("SASL_PLAINTEXT"))
	hs.Mechanism = "OAUTHBEARER"
	if r := tc.Do(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		t.Fatalf("SaslHandshake: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// The verifier allows 30s of clock skew: a token that expired 29.5s
	// ago is still valid for half a second.
	tok := token(t, a.jwtKey, "bob", jwtAudience, time.Now().Add(-29500*time.Millisecond))
	auth.SASLAuthBytes = []byte("n,,\x01auth=Bearer " + tok + "\x01\x01")
	r = tc.Do(auth).(*kmsg.SASLAuthenticateResponse)
	if r.ErrorCode != 0 {
		t.Logf("token too close to its expiry: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
	} else if r.SessionLifetimeMillis > 1000 {
		t.Fatalf("session lifetime %dms outlives the token", r.SessionLifetimeMillis)
	}
}

// TestAlterUserScramCredentials creates a user with kadm (KIP-554: the
// client salts the password), authenticates as it, describes and deletes
// it.
func TestAlterUserScramCredentials(t *testing.T) {
	a := startSecureAgent(t, nil)
	ctx := context.Background()
	alice := a.franzClient(t, "SASL_PLAINTEXT", scram.Auth{User: saslUser, Pass: saslPassword}.AsSha512Mechanism(), nil)
	adm := kadm.NewClient(alice)
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "carol", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "carol-pw"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := res["carol"].Err; err != nil {
		t.Fatalf("carol: %v", err)
	}
	// kadm refuses too few iterations itself: the raw request.
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = "dave", 2, 100, []byte("salt"), []byte("salted")
	req.Upsertions = append(req.Upsertions, up)
	del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	del.Name, del.Mechanism = "erin", 1
	req.Deletions = append(req.Deletions, del)
	raw, err := req.RequestWith(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int16{}
	for _, r := range raw.Results {
		codes[r.User] = r.ErrorCode
	}
	if codes["dave"] != kerr.UnacceptableCredential.Code || codes["erin"] != kerr.ResourceNotFound.Code || len(codes) != 2 {
		t.Fatalf("dave with 100 iterations, erin deleted without a credential: %+v; want UNACCEPTABLE_CREDENTIAL, RESOURCE_NOT_FOUND", raw.Results)
	}
	carol := a.franzClient(t, "SASL_PLAINTEXT", scram.Auth{User: "carol", Pass: "carol-pw"}.AsSha256Mechanism(), nil)
	if err := carol.Ping(ctx); err != nil {
		t.Fatalf("carol authenticates: %v", err)
	}
	plainCarol := a.franzClient(t, "SASL_PLAINTEXT", plain.Auth{User: "carol", Pass: "carol-pw"}.AsMechanism(), nil)
	if err := plainCarol.Ping(ctx); err != nil {
		t.Fatalf("carol authenticates with PLAIN: %v", err)
	}
	described, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := described["carol"]; d.Err != nil || len(d.CredInfos) != 1 || d.CredInfos[0].Iterations != 4096 {
		t.Fatalf("describe carol: %+v", d)
	}
	if d := described["alice"]; len(d.CredInfos) != 2 {
		t.Fatalf("describe alice: %+v", d)
	}
	one, err := adm.DescribeUserSCRAMs(ctx, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(one["nobody"].Err, kerr.ResourceNotFound) {
		t.Fatalf("describe nobody: %+v", one["nobody"])
	}
	res, err = adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "carol", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil || res["carol"].Err != nil {
		t.Fatalf("delete carol: %v %+v", err, res)
	}
	gone := a.franzClient(t, "SASL_PLAINTEXT", scram.Auth{User: "carol", Pass: "carol-pw"}.AsSha256Mechanism(), nil)
	if err := gone.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("carol after deletion: %v", err)
	}
}
