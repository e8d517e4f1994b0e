package agent

import "testing"

// TestValidDataKey: the admin API reads only segment objects, whatever
// key a caller sends.
func TestValidDataKey(t *testing.T) {
	for key, want := range map[string]bool{
		"segments/0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b": true,
		"segments/x":                            true,
		"segments/":                             false,
		"segments":                              false,
		"":                                      false,
		"metadata.db":                           false,
		"../metadata.db":                        false,
		"segments/../metadata.db":               false,
		"segments/a/b":                          false,
		"/segments/x":                           false,
		"segments/x\x00":                        false,
		"segments\\x":                           false,
		"segments/" + string(make([]byte, 300)): false,
	} {
		if got := validDataKey(key); got != want {
			t.Errorf("validDataKey(%q) = %v, want %v", key, got, want)
		}
	}
}
