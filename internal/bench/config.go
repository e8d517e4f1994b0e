package bench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Config is one workload. The same Config runs unchanged against every
// target, so that their reports compare.
type Config struct {
	Topics            int    // topics written and read (default 1)
	Partitions        int    // partitions per topic (default 12)
	ReplicationFactor int    // for created topics; -1 takes the broker default
	TopicPrefix       string // created topics are PREFIX-RUNID-N (default floe-bench)
	// TopicConfigs are set on the created topics (e.g.
	// floe.latency.target.ms).
	TopicConfigs map[string]string

	Producers  int // producer clients (default 1)
	Consumers  int // consumer clients, each reading every partition (a "group" each)
	RecordSize int // bytes of value per record (default 1 KiB, at least 8)

	Keys     KeyDist // key distribution (default none: round-robin partitions)
	KeyCount int     // distinct keys for uniform and zipf (default 10,000)

	// Rate is the target produce rate in bytes of record value per second,
	// over all producers. 0 produces as fast as the clients can.
	Rate int64

	Acks        string // all (default), leader or none
	Compression string // none (default), gzip, snappy, lz4, zstd
	// TopicCompression is the created topics' compression.type (empty:
	// not set, the server's default), to measure a server that
	// recompresses batches whose codec differs.
	TopicCompression string
	Linger           time.Duration // the producer client's linger (franz-go: 10ms)
	// MaxBuffered bounds each producer client's unacknowledged bytes.
	MaxBuffered int64

	Warmup   time.Duration // excluded from the figures (default 5s)
	Duration time.Duration // measured (default 30s)
	// CatchUp, when > 0, selects the catch-up scenario: produce this many
	// bytes of history as fast as possible, restart the target when it can
	// (so its caches are cold), then measure consumers reading it all.
	CatchUp int64
	// CatchUpCompact compacts the history before the catch-up read, on
	// targets that can (an in-process Floe), so that the read is of few
	// large objects.
	CatchUpCompact bool
	// Drain bounds the wait, after the run, for outstanding acks and for
	// consumers to read everything (default 60s).
	Drain time.Duration

	Prices Prices // for the cost estimate

	// ClientOpts are added to every client's options: TLS and SASL, to
	// measure what security costs.
	ClientOpts []kgo.Opt

	// Progress, when set, receives a live status line every
	// ProgressInterval (default 1s). ProgressInPlace redraws one line
	// (a terminal); otherwise one line is printed per interval.
	Progress         io.Writer
	ProgressInterval time.Duration
	ProgressInPlace  bool

	// Measuring, when set, is called with true when the measured window
	// opens (after the warm-up; for catch-up, when the read starts) and
	// with false when it closes: a CPU profile of the window alone.
	Measuring func(on bool)

	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Topics <= 0 {
		c.Topics = 1
	}
	if c.Partitions <= 0 {
		c.Partitions = 12
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.TopicPrefix == "" {
		c.TopicPrefix = "floe-bench"
	}
	if c.Producers <= 0 {
		c.Producers = 1
	}
	if c.RecordSize == 0 {
		c.RecordSize = 1024
	}
	if c.KeyCount <= 0 {
		c.KeyCount = 10000
	}
	if c.Acks == "" {
		c.Acks = "all"
	}
	if c.Compression == "" {
		c.Compression = "none"
	}
	if c.MaxBuffered <= 0 {
		c.MaxBuffered = 256 << 20
	}
	if c.Duration <= 0 {
		c.Duration = 30 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = time.Minute
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Prices.setDefaults()
}

func (c *Config) validate() error {
	var errs []error
	if c.RecordSize < headerBytes {
		errs = append(errs, fmt.Errorf("record size %d: at least %d bytes (the send timestamp)", c.RecordSize, headerBytes))
	}
	if c.Rate < 0 {
		errs = append(errs, errors.New("rate must be ≥ 0"))
	}
	if c.Warmup < 0 {
		errs = append(errs, errors.New("warm-up must be ≥ 0"))
	}
	if c.Consumers < 0 {
		errs = append(errs, errors.New("consumers must be ≥ 0"))
	}
	if c.CatchUp > 0 && c.Consumers == 0 {
		errs = append(errs, errors.New("catch-up needs at least one consumer"))
	}
	switch c.Acks {
	case "all", "leader", "none":
	default:
		errs = append(errs, fmt.Errorf("acks %q: want all, leader or none", c.Acks))
	}
	switch c.Compression {
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		errs = append(errs, fmt.Errorf("compression %q: want none, gzip, snappy, lz4 or zstd", c.Compression))
	}
	switch c.TopicCompression {
	case "", "producer", "uncompressed", "gzip", "snappy", "lz4", "zstd":
	default:
		errs = append(errs, fmt.Errorf("topic compression %q: want producer, uncompressed, gzip, snappy, lz4 or zstd", c.TopicCompression))
	}
	return errors.Join(errs...)
}

// recordsPerSecond is the target rate in records over all producers
// (0: as fast as possible).
func (c *Config) recordsPerSecond() float64 {
	if c.Rate <= 0 {
		return 0
	}
	return float64(c.Rate) / float64(c.RecordSize)
}

// KeyDist is how record keys are chosen.
type KeyDist string

// The key distributions.
const (
	// KeysNone sends records without keys, spread round-robin over every
	// partition of every topic.
	KeysNone KeyDist = "none"
	// KeysUniform picks one of KeyCount keys uniformly; the client's
	// default (murmur2) partitioner places it.
	KeysUniform KeyDist = "uniform"
	// KeysZipf picks one of KeyCount keys with a Zipf(1.1) skew: a few hot
	// keys, hence a few hot partitions.
	KeysZipf KeyDist = "zipf"
	// KeysSequential cycles through KeyCount keys in order.
	KeysSequential KeyDist = "sequential"
)

// ParseKeyDist parses a key distribution name.
func ParseKeyDist(s string) (KeyDist, error) {
	switch d := KeyDist(strings.ToLower(s)); d {
	case "", KeysNone:
		return KeysNone, nil
	case KeysUniform, KeysZipf, KeysSequential:
		return d, nil
	}
	return "", fmt.Errorf("key distribution %q: want none, uniform, zipf or sequential", s)
}

// ParseBytes parses a size such as 1024, 1KiB, 4MiB, 1.5GiB or 10MB; a
// trailing "/s" is allowed for rates. Binary (KiB) and decimal (KB)
// units both work; a bare number is bytes.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	mult, ok := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}[strings.ToLower(strings.TrimSpace(t[i:]))]
	t = t[:i]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit (want KiB, MiB, GiB, KB, MB, GB)", s)
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)", s)
	}
	return int64(v * mult), nil
}

// LatencyRange is the per-request delay of an injected-latency bucket:
// uniformly distributed in [Min, Max].
type LatencyRange struct {
	Min, Max time.Duration
}

// ParseLatencyRange parses "0", "30ms" (fixed) or "20ms-50ms" (uniform).
func ParseLatencyRange(s string) (LatencyRange, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return LatencyRange{}, nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		hi = lo
	}
	a, err1 := time.ParseDuration(strings.TrimSpace(lo))
	b, err2 := time.ParseDuration(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || a < 0 || b < a {
		return LatencyRange{}, fmt.Errorf("latency %q: want 0, a duration, or MIN-MAX such as 20ms-50ms", s)
	}
	return LatencyRange{Min: a, Max: b}, nil
}

func (l LatencyRange) String() string {
	switch {
	case l.Max == 0:
		return "none"
	case l.Min == l.Max:
		return l.Min.String()
	}
	return l.Min.String() + "–" + l.Max.String() + " uniform"
}
