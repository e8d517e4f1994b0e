package control

// Crash stops s as a dying process would: without releasing its leases,
// which expire by themselves.
func Crash(s *Server) { s.close(false) }

// SetMaxPendingBytes sets the bound on the batches a vcluster holds for
// the bucket, for the test, and puts it back after.
func SetMaxPendingBytes(t interface{ Cleanup(func()) }, n int64) {
	old := maxPendingBytes
	maxPendingBytes = n
	t.Cleanup(func() { maxPendingBytes = old })
}
