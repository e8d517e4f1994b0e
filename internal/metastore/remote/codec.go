package remote

import "github.com/fxamacker/cbor/v2"

// Payloads, arguments, results and journal batches are CBOR (RFC 8949):
// unlike JSON it carries strings that are not valid UTF-8 unchanged (Kafka
// group names and transactional ids are whatever bytes a client sent),
// and its decoder checks that a whole item is well formed, with bounded
// nesting and counts, before it allocates for it.

// RawMessage is an encoded value, decoded later.
type RawMessage = cbor.RawMessage

// MaxArrayElements bounds every array and map of a payload (the batches of
// a segment commit, the extents of an answer): with MaxFrame it bounds
// what decoding a frame allocates.
const MaxArrayElements = 1 << 17

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.EncOptions{Time: cbor.TimeRFC3339Nano}.EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		UTF8:             cbor.UTF8DecodeInvalid,
		IndefLength:      cbor.IndefLengthForbidden, // as checkDecodeCost
		MaxNestedLevels:  32,
		MaxArrayElements: MaxArrayElements,
		MaxMapPairs:      MaxArrayElements,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v: the hot types by hand (hotcodec.go), the rest with
// the codec, in the same bytes.
func Marshal(v any) ([]byte, error) {
	if b, ok := marshalHot(v); ok {
		return b, nil
	}
	return encMode.Marshal(v)
}

// Unmarshal decodes data into v: what the hot types' readers take by
// hand, the rest with the codec, into the same values; a Response's
// Result read by hand shares data's bytes (a frame's payload is its own).
// Either way the value is one the codec gives for data.
func Unmarshal(data []byte, v any) error {
	if unmarshalHot(data, v) {
		return nil
	}
	return decMode.Unmarshal(data, v)
}
