package produce

// SetMaxManifestBytes lowers the bound on one outage manifest for a test
// and returns the function that restores it.
func SetMaxManifestBytes(n int64) (restore func()) {
	old := maxManifestBytes
	maxManifestBytes = n
	return func() { maxManifestBytes = old }
}
