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

// Marshal encodes v.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes data into v.
func Unmarshal(data []byte, v any) error { return decMode.Unmarshal(data, v) }
