package recordbatch

// Compress exposes the builder's compression for the same tests.
func Compress(c Codec, xerial bool, src []byte) ([]byte, error) { return compress(c, xerial, src) }
