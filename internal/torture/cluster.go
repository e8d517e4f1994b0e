// Package torture runs Floe as a cluster of `floe agent` processes on a
// PostgreSQL server of its own and an S3-compatible server, with clients
// reaching the agents through a Kafka proxy (kproxy), the agents reaching
// the bucket through an HTTP fault proxy, and each agent reaching the
// database and that proxy through TCP paths of its own, runs the checker's
// workload while a nemesis applies faults on a seeded schedule, heals,
// and checks the history: what `floe torture` does.
package torture

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/kproxy"
	"github.com/floe-io/floe/internal/nemesis"
)

// S3 is the S3-compatible server the cluster keeps its objects on.
type S3 struct {
	Endpoint, Bucket, AccessKey, SecretKey string
}

// S3FromEnv reads the server scripts/services s3 starts (the
// FLOE_TEST_S3_* variables it exports).
func S3FromEnv() (S3, error) {
	s := S3{
		Endpoint:  os.Getenv("FLOE_TEST_S3_ENDPOINT"),
		Bucket:    os.Getenv("FLOE_TEST_S3_BUCKET"),
		AccessKey: os.Getenv("FLOE_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("FLOE_TEST_S3_SECRET_KEY"),
	}
	if s.Endpoint == "" {
		return s, errors.New(`no S3-compatible server: FLOE_TEST_S3_ENDPOINT is not set; run: eval "$(scripts/services postgres s3)"`)
	}
	if s.Bucket == "" {
		s.Bucket = "floe-test"
	}
	return s, nil
}

// Cluster is what a torture run runs on.
type Cluster struct {
	PG     *nemesis.Postgres
	Bucket *nemesis.BucketProxy
	Proxy  *kproxy.Proxy
	Agents []*nemesis.Proc
	// DBPaths and BucketPaths are each agent's own way to the database
	// and to the bucket proxy: TCP proxies that cut one agent off while
	// the others keep theirs.
	DBPaths, BucketPaths []*nemesis.TCPProxy
	// Addrs are the agents' own listeners; Brokers the proxy's listener
	// for each, which clients are given.
	Addrs, Brokers []string
	Prefix         string
}

// ClusterOptions shape a cluster.
type ClusterOptions struct {
	Agents int
	// Floe is the floe binary the agents run (default this executable).
	Floe   string
	S3     S3
	Linger time.Duration
	Seed   int64
	// Log gets the agents' output (nil: kept in memory only).
	Log io.Writer
	// LogLevel is the agents' --log-level (default info).
	LogLevel string
}

var listening = regexp.MustCompile(`msg="agent listening"`)

func randomName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// StartCluster starts PostgreSQL, the bucket proxy, the agents (each on
// a fixed loopback port, so a restarted agent listens where it did) and
// the Kafka proxy. Close stops them all.
func StartCluster(ctx context.Context, o ClusterOptions) (_ *Cluster, err error) {
	if o.Agents <= 0 {
		o.Agents = 3
	}
	if o.Linger <= 0 {
		o.Linger = 50 * time.Millisecond
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.Floe == "" {
		if o.Floe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	c := &Cluster{Prefix: randomName("torture-")}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.PG, err = nemesis.NewPostgres(ctx); err != nil {
		return nil, err
	}
	if c.Bucket, err = nemesis.StartBucketProxy(o.S3.Endpoint, o.S3.Bucket, o.Seed); err != nil {
		return nil, err
	}
	bucketAddr := strings.TrimPrefix(c.Bucket.URL, "http://")
	env := []string{
		"AWS_ACCESS_KEY_ID=" + o.S3.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + o.S3.SecretKey,
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	}
	for i := range o.Agents {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		name := fmt.Sprintf("agent-%d", i)
		dbPath, err := nemesis.StartTCPProxy("127.0.0.1:" + strconv.Itoa(c.PG.Port))
		if err != nil {
			return nil, err
		}
		c.DBPaths = append(c.DBPaths, dbPath)
		bucketPath, err := nemesis.StartTCPProxy(bucketAddr)
		if err != nil {
			return nil, err
		}
		c.BucketPaths = append(c.BucketPaths, bucketPath)
		q := url.Values{"endpoint": {"http://" + bucketPath.Addr}, "region": {"us-east-1"}, "path_style": {"true"}}
		p := &nemesis.Proc{
			Name: name,
			Path: o.Floe,
			Args: []string{"agent",
				"--bucket", "s3://" + o.S3.Bucket + "/" + c.Prefix + "?" + q.Encode(),
				"--metastore", "postgres://postgres@" + dbPath.Addr + "/postgres?sslmode=disable",
				"--listen", addr,
				"--admin-listen", "127.0.0.1:0",
				"--linger", o.Linger.String(),
				"--log-level", o.LogLevel,
			},
			Env:   env,
			Ready: func(out string) bool { return listening.MatchString(out) },
		}
		if o.Log != nil {
			p.Output = &prefixWriter{w: o.Log, prefix: name + ": "}
		}
		if err := p.Start(ctx); err != nil {
			return nil, err
		}
		c.Agents = append(c.Agents, p)
		c.Addrs = append(c.Addrs, addr)
	}
	proxy, first, err := kproxy.Start(c.Addrs[0], nil)
	if err != nil {
		return nil, err
	}
	c.Proxy = proxy
	c.Brokers = []string{first}
	for _, a := range c.Addrs[1:] {
		b, err := proxy.Listen(a)
		if err != nil {
			return nil, err
		}
		c.Brokers = append(c.Brokers, b)
	}
	return c, nil
}

// Faults returns the nemesis's faults of the given kinds on c: one per
// agent for kill, pause, clock, partition, db-partition and
// bucket-partition. The clock faults draw their skews from seed (each
// agent's from its own generator).
func (c *Cluster) Faults(kinds []string, seed int64) ([]nemesis.Fault, error) {
	var out []nemesis.Fault
	for _, k := range kinds {
		switch k {
		case "kill":
			for _, a := range c.Agents {
				out = append(out, nemesis.Kill(a))
			}
		case "pause":
			for _, a := range c.Agents {
				out = append(out, nemesis.Pause(a))
			}
		case "clock":
			for i, a := range c.Agents {
				out = append(out, nemesis.Clock(a, seed*16+int64(i), nemesis.ClockOptions{}))
			}
		case "partition":
			for i, a := range c.Agents {
				out = append(out, nemesis.Partition(c.Proxy, a.Name, c.Addrs[i]))
			}
		case "db-partition":
			for i, a := range c.Agents {
				out = append(out, nemesis.DBPartition(c.DBPaths[i], a.Name))
			}
		case "bucket-partition":
			for i, a := range c.Agents {
				out = append(out, nemesis.BucketPartition(c.BucketPaths[i], a.Name))
			}
		case "db-restart":
			out = append(out, nemesis.DBRestart(c.PG, "immediate"))
		case "db-pause":
			out = append(out, nemesis.DBPause(c.PG))
		case "bucket-errors":
			out = append(out, nemesis.BucketErrors(c.Bucket, nemesis.DefaultBucketErrors))
		default:
			return nil, fmt.Errorf("unknown fault %q (known: %v)", k, FaultKinds)
		}
	}
	return out, nil
}

// FaultKinds are the kinds Faults knows.
var FaultKinds = []string{"kill", "pause", "clock", "db-restart", "db-pause", "db-partition", "bucket-errors", "bucket-partition", "partition"}

// Close stops the proxies, the agents (SIGKILL: nothing of theirs is
// kept) and PostgreSQL.
func (c *Cluster) Close() {
	if c.Proxy != nil {
		c.Proxy.Close()
	}
	for _, a := range c.Agents {
		a.Resume()
		a.Kill()
	}
	for _, p := range append(c.DBPaths, c.BucketPaths...) {
		p.Close()
	}
	if c.Bucket != nil {
		c.Bucket.Close()
	}
	if c.PG != nil {
		c.PG.Remove()
	}
}

type prefixWriter struct {
	w      io.Writer
	prefix string
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if !p.mid {
			io.WriteString(p.w, p.prefix)
		}
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		if i < len(b) {
			p.w.Write(b[:i+1])
			b = b[i+1:]
			p.mid = false
		} else {
			p.w.Write(b)
			b = nil
			p.mid = true
		}
	}
	return n, nil
}
