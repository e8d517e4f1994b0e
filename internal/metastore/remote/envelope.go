package remote

// A request's envelope, the CBOR map {"op": NAME, "args": ARGS}, is
// written and read here without the reflection-driven codec: Marshal
// would walk and copy the already encoded arguments to embed them, and
// Unmarshal would walk them once more and copy them into a RawMessage
// before the op decodes them. The bytes are those Marshal writes for a
// Request (TestRequestEnvelope); a payload of any other shape is
// decoded by Unmarshal, as before.

// AppendRequest appends the encoding of Request{Op: op, Args: args} to
// b. args is one encoded item (Marshal's), appended as it is; empty
// args encode as null, as an empty RawMessage does.
func AppendRequest(b []byte, op string, args []byte) []byte {
	if len(args) == 0 {
		args = null
	}
	return append(appendRequestHead(b, op), args...)
}

// null is CBOR's null, the encoding of empty arguments.
var null = []byte{cborNull}

// appendRequestHead appends what comes before the arguments.
func appendRequestHead(b []byte, op string) []byte {
	b = appendHead(b, majorMap, 2)
	b = appendTextString(b, "op")
	b = appendTextString(b, op)
	return appendTextString(b, "args")
}

// DecodeRequest reads a request's payload. The arguments it returns
// share the payload's bytes (a frame's payload is its own allocation)
// and are not checked here: every op decodes them with Unmarshal, which
// refuses anything but one well-formed item.
func DecodeRequest(payload []byte) (Request, error) {
	if op, args, ok := splitRequest(payload); ok {
		return Request{Op: op, Args: args}, nil
	}
	var req Request
	err := Unmarshal(payload, &req)
	return req, err
}

// splitRequest reads the envelope AppendRequest writes: a map of two
// pairs, "op" with a text, then "args" and the rest of the payload (at
// least one byte). ok is false for any other shape.
func splitRequest(p []byte) (op string, args []byte, ok bool) {
	r := cborIn{b: p}
	if r.count(majorMap) != 2 {
		return "", nil, false
	}
	r.key("op")
	name := r.str(majorText)
	r.key("args")
	if r.bad || len(r.b) == 0 {
		return "", nil, false
	}
	return opName(name), r.b, true
}

// opName is the name b spells: a known op's own string, without
// allocating one per request.
func opName(b []byte) string {
	if o, ok := ops[string(b)]; ok {
		return o.Name
	}
	if string(b) == OpSchedule {
		return OpSchedule
	}
	return string(b)
}
