package control

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes every vcluster's counters, read at scrape time, with
// a vcluster label.
type collector struct {
	s                           *Server
	batches, slow, commands     *prometheus.Desc
	appendSeconds, applySeconds *prometheus.Desc
	sessions, epoch             *prometheus.Desc
	replayed, backedUp          *prometheus.Desc
	lagBatches, lagSeconds      *prometheus.Desc
	snapshotSeq, backupFailures *prometheus.Desc
	trimmed                     *prometheus.Desc
	standbySeq, standbyLag      *prometheus.Desc
	standbyPollAge, restarts    *prometheus.Desc
	stateKeys, stateBytes       *prometheus.Desc
	standbyKeys, standbyBytes   *prometheus.Desc
}

// NewCollector returns the Prometheus collector of s's vclusters.
func NewCollector(s *Server) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("floe_control_vcluster_"+name, help, []string{"vcluster"}, nil)
	}
	return &collector{
		s:              s,
		batches:        d("batches_total", "Journal rows appended (batches of commands)."),
		slow:           d("batches_one_by_one_total", "Batches applied one command per state transaction because one failed inside the batch's."),
		commands:       d("commands_total", "Mutating commands journaled and applied."),
		appendSeconds:  d("append_seconds_total", "Time spent encoding and appending batches to the journal."),
		applySeconds:   d("apply_seconds_total", "Time spent applying batches to the in-memory state."),
		sessions:       d("sessions", "Agent connections open."),
		epoch:          d("epoch", "Journal lease epoch this process holds."),
		replayed:       d("replayed_batches", "Journal rows replayed when this process opened the vcluster (after its snapshot)."),
		backedUp:       d("backup_seq", "Every journal batch up to this sequence number is in the bucket (snapshot and log objects)."),
		lagBatches:     d("backup_lag_batches", "Journaled batches not yet in the bucket."),
		lagSeconds:     d("backup_lag_seconds", "Age of the oldest journaled batch not yet in the bucket (0: none)."),
		snapshotSeq:    d("snapshot_seq", "Sequence number of the newest snapshot in the bucket."),
		backupFailures: d("backup_failures_total", "Backup uploads (log objects, snapshots) that failed and are retried."),
		trimmed:        d("journal_trimmed_seq", "Journal rows up to this sequence number were deleted (--trim-journal)."),
		standbySeq:     d("standby_seq", "Last journal batch applied by this process's warm standby of a vcluster it does not lead."),
		standbyLag:     d("standby_lag_batches", "Journal batches after the warm standby's state when it last polled (0: it reached the journal's end)."),
		standbyPollAge: d("standby_poll_age_seconds", "Time since the warm standby last read the journal successfully."),
		restarts:       d("standby_restarts_total", "Warm standby states rebuilt from the newest snapshot because the journal was trimmed past them."),
		stateKeys:      d("state_keys", "Keys of the vcluster's state, held in this process's memory."),
		stateBytes:     d("state_bytes", "Bytes of the keys and values of the vcluster's state, held in this process's memory (not counting the trees' own overhead)."),
		standbyKeys:    d("standby_state_keys", "Keys of the warm standby's state, held in this process's memory."),
		standbyBytes:   d("standby_state_bytes", "Bytes of the keys and values of the warm standby's state, held in this process's memory."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.batches, c.slow, c.commands, c.appendSeconds, c.applySeconds, c.sessions, c.epoch,
		c.replayed, c.backedUp, c.lagBatches, c.lagSeconds, c.snapshotSeq, c.backupFailures, c.trimmed,
		c.standbySeq, c.standbyLag, c.standbyPollAge, c.restarts, c.stateKeys, c.stateBytes, c.standbyKeys, c.standbyBytes} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, v := range c.s.VClusters() {
		st, ok := c.s.Stats(v.Name)
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.batches, prometheus.CounterValue, float64(st.Batches), v.Name)
		ch <- prometheus.MustNewConstMetric(c.slow, prometheus.CounterValue, float64(st.SlowBatches), v.Name)
		ch <- prometheus.MustNewConstMetric(c.commands, prometheus.CounterValue, float64(st.Commands), v.Name)
		ch <- prometheus.MustNewConstMetric(c.appendSeconds, prometheus.CounterValue, st.Append.Seconds(), v.Name)
		ch <- prometheus.MustNewConstMetric(c.applySeconds, prometheus.CounterValue, st.Apply.Seconds(), v.Name)
		ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(v.Sessions), v.Name)
		ch <- prometheus.MustNewConstMetric(c.epoch, prometheus.GaugeValue, float64(v.Epoch), v.Name)
		ch <- prometheus.MustNewConstMetric(c.replayed, prometheus.GaugeValue, float64(st.Replayed), v.Name)
		ch <- prometheus.MustNewConstMetric(c.stateKeys, prometheus.GaugeValue, float64(st.StateKeys), v.Name)
		ch <- prometheus.MustNewConstMetric(c.stateBytes, prometheus.GaugeValue, float64(st.StateBytes), v.Name)
		if st.Backup != (BackupStats{}) {
			ch <- prometheus.MustNewConstMetric(c.backedUp, prometheus.GaugeValue, float64(st.Backup.BackedUp), v.Name)
			ch <- prometheus.MustNewConstMetric(c.lagBatches, prometheus.GaugeValue, float64(st.Backup.LagBatches), v.Name)
			ch <- prometheus.MustNewConstMetric(c.lagSeconds, prometheus.GaugeValue, st.Backup.Lag.Seconds(), v.Name)
			ch <- prometheus.MustNewConstMetric(c.snapshotSeq, prometheus.GaugeValue, float64(st.Backup.Snapshot), v.Name)
			ch <- prometheus.MustNewConstMetric(c.backupFailures, prometheus.CounterValue, float64(st.Backup.Failures), v.Name)
			ch <- prometheus.MustNewConstMetric(c.trimmed, prometheus.GaugeValue, float64(st.Backup.Trimmed), v.Name)
		}
	}
	for _, name := range c.s.standbyNames() {
		st, ok := c.s.Standby(name)
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.standbySeq, prometheus.GaugeValue, float64(st.Seq), name)
		ch <- prometheus.MustNewConstMetric(c.standbyLag, prometheus.GaugeValue, float64(st.Behind), name)
		if !st.Polled.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.standbyPollAge, prometheus.GaugeValue, time.Since(st.Polled).Seconds(), name)
		}
		ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(st.Restarts), name)
		ch <- prometheus.MustNewConstMetric(c.standbyKeys, prometheus.GaugeValue, float64(st.StateKeys), name)
		ch <- prometheus.MustNewConstMetric(c.standbyBytes, prometheus.GaugeValue, float64(st.StateBytes), name)
	}
}
