package bench

import "fmt"

// secondsPerMonth is a 30-day month.
const secondsPerMonth = 30 * 24 * 3600

// Prices are list prices in US dollars, configurable because they differ
// by provider and region. Defaults: AWS us-east-1, S3 Standard and gp3.
type Prices struct {
	PutPer1000      float64 `json:"put_per_1000"`       // S3 PUT: $0.005
	GetPer1000      float64 `json:"get_per_1000"`       // S3 GET: $0.0004
	StorageGiBMonth float64 `json:"storage_gib_month"`  // S3 Standard: $0.023
	CrossZoneGiB    float64 `json:"cross_zone_gib"`     // $0.01 out + $0.01 in
	DiskGiBMonth    float64 `json:"disk_gib_month"`     // gp3: $0.08
	Retention       Days    `json:"retention_days"`     // how long data is kept (default 7 days)
	Zones           int     `json:"zones"`              // availability zones (default 3)
	ReplicationFact int     `json:"kafka_replication"`  // Kafka's replication factor (default 3)
	DiskUtilisation float64 `json:"kafka_disk_use"`     // fraction of Kafka disk filled (default 0.5)
	BlockBytes      int64   `json:"floe_cache_block_b"` // Floe's read block (4 MiB)
}

// Days is a duration that marshals as a number of days.
type Days float64

func (p *Prices) setDefaults() {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&p.PutPer1000, 0.005)
	def(&p.GetPer1000, 0.0004)
	def(&p.StorageGiBMonth, 0.023)
	def(&p.CrossZoneGiB, 0.02)
	def(&p.DiskGiBMonth, 0.08)
	def(&p.DiskUtilisation, 0.5)
	if p.Retention <= 0 {
		p.Retention = 7
	}
	if p.Zones <= 0 {
		p.Zones = 3
	}
	if p.ReplicationFact <= 0 {
		p.ReplicationFact = 3
	}
	if p.BlockBytes <= 0 {
		p.BlockBytes = 4 << 20
	}
}

// CostLine is one item of a monthly bill.
type CostLine struct {
	Item    string  `json:"item"`
	Dollars float64 `json:"usd_per_month"`
	How     string  `json:"how"`
}

// Cost compares the monthly bill of the measured workload on Floe with
// the same workload on a self-hosted Kafka cluster across zones.
type Cost struct {
	WriteMiBps  float64    `json:"write_mib_per_sec"`
	Floe        []CostLine `json:"floe"`
	FloeTotal   float64    `json:"floe_usd_per_month"`
	Kafka       []CostLine `json:"kafka"`
	KafkaTotal  float64    `json:"kafka_usd_per_month"`
	Assumptions []string   `json:"assumptions"`
}

// EstimateCost prices a month of the measured workload: writeBps bytes of
// record value per second, read by readers independent consumers, with the
// object-store request rates the server reported (putsPerSec, getsPerSec).
func EstimateCost(p Prices, writeBps float64, readers int, putsPerSec, getsPerSec float64) *Cost {
	p.setDefaults()
	const gib = 1 << 30
	zones := float64(p.Zones)
	rf := float64(p.ReplicationFact)
	monthGiB := writeBps * secondsPerMonth / gib
	retainedGiB := writeBps * float64(p.Retention) * 86400 / gib
	otherZones := (zones - 1) / zones

	// Live-edge GETs in the other zones: one GET per block per zone (the
	// zone ring), whatever the number of consumers. The agent measured
	// here is one zone, served from its write-through cache.
	liveGets := 0.0
	if readers > 0 {
		liveGets = (zones - 1) * writeBps / float64(p.BlockBytes)
	}
	c := &Cost{WriteMiBps: writeBps / (1 << 20)}
	add := func(lines *[]CostLine, total *float64, item string, usd float64, how string) {
		*lines = append(*lines, CostLine{Item: item, Dollars: usd, How: how})
		*total += usd
	}
	add(&c.Floe, &c.FloeTotal, "object PUTs", putsPerSec*secondsPerMonth/1000*p.PutPer1000,
		fmt.Sprintf("%.2f PUT/s measured × $%g/1000", putsPerSec, p.PutPer1000))
	add(&c.Floe, &c.FloeTotal, "object GETs", (getsPerSec+liveGets)*secondsPerMonth/1000*p.GetPer1000,
		fmt.Sprintf("(%.2f GET/s measured + %.2f/s live edge in %d other zones) × $%g/1000", getsPerSec, liveGets, p.Zones-1, p.GetPer1000))
	add(&c.Floe, &c.FloeTotal, "object storage", retainedGiB*p.StorageGiBMonth,
		fmt.Sprintf("%.0f GiB retained (%g days) × $%g/GiB-month", retainedGiB, float64(p.Retention), p.StorageGiBMonth))
	add(&c.Floe, &c.FloeTotal, "cross-zone traffic", 0, "none: clients use agents in their zone; VM↔bucket traffic is free")

	add(&c.Kafka, &c.KafkaTotal, "replication across zones", monthGiB*(rf-1)*p.CrossZoneGiB,
		fmt.Sprintf("%.0f GiB/month written × %d follower copies × $%g/GiB", monthGiB, p.ReplicationFact-1, p.CrossZoneGiB))
	add(&c.Kafka, &c.KafkaTotal, "producers to leaders in other zones", monthGiB*otherZones*p.CrossZoneGiB,
		fmt.Sprintf("%.0f GiB/month × %d/%d of leaders elsewhere × $%g/GiB", monthGiB, p.Zones-1, p.Zones, p.CrossZoneGiB))
	add(&c.Kafka, &c.KafkaTotal, "consumers from leaders in other zones", monthGiB*float64(readers)*otherZones*p.CrossZoneGiB,
		fmt.Sprintf("%.0f GiB/month × %d consumers × %d/%d × $%g/GiB (no fetch-from-follower)", monthGiB, readers, p.Zones-1, p.Zones, p.CrossZoneGiB))
	add(&c.Kafka, &c.KafkaTotal, "replicated disks", retainedGiB*rf/p.DiskUtilisation*p.DiskGiBMonth,
		fmt.Sprintf("%.0f GiB × RF %d ÷ %.0f%% full × $%g/GiB-month", retainedGiB, p.ReplicationFact, p.DiskUtilisation*100, p.DiskGiBMonth))

	c.Assumptions = []string{
		fmt.Sprintf("a 30-day month at the measured produce rate (%.2f MiB/s of record values), %g days retention", c.WriteMiBps, float64(p.Retention)),
		fmt.Sprintf("Kafka: %d zones, replication factor %d, leaders spread evenly, consumers without fetch-from-follower, disks %.0f%% full", p.Zones, p.ReplicationFact, p.DiskUtilisation*100),
		"Floe: PUT and GET rates as measured on this one agent; storage is the retention window, to which the retention job and the cleaner keep the bucket",
		"compute (VMs) left out of both; batch overhead and compression left out (record values only)",
		fmt.Sprintf("prices: PUT $%g/1000, GET $%g/1000, object storage $%g/GiB-month, cross-zone $%g/GiB, disk $%g/GiB-month", p.PutPer1000, p.GetPer1000, p.StorageGiBMonth, p.CrossZoneGiB, p.DiskGiBMonth),
	}
	return c
}
