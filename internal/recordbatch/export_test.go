package recordbatch

// Decompress exposes decompress to the black-box tests, so that the size
// cap can be tested with a small limit instead of 64 MiB payloads.
func Decompress(c Codec, src []byte, limit int) ([]byte, error) { return decompress(c, src, limit) }

// Compress exposes the builder's compression for the same tests.
func Compress(c Codec, xerial bool, src []byte) ([]byte, error) { return compress(c, xerial, src) }
