package remote

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// Decoding CBOR into Go values can allocate far more than the input: a
// one-byte empty map inside an array becomes a whole struct (an Extent is
// ~130 bytes), so a 16 MiB request of nested arrays of empty maps once
// decoded into about 1.9 GB. The decoder's options bound counts and
// nesting, not the product. So before decoding an op's arguments the
// server walks the encoded item alongside the Go type it will become and
// adds up what decoding it would allocate (slice backing arrays, strings,
// maps, pointers), refusing the request when that is over
// MaxDecodeFactor times its size. The walk itself allocates nothing.

// MaxDecodeFactor bounds what decoding an op's arguments may allocate, as
// a multiple of their encoded size (plus decodeSlack). Well-formed
// arguments written by the client decode into less than their size, or
// about twice it for a struct encoded as an array of its fields (a
// segment commit's batches).
const MaxDecodeFactor = 4

// decodeSlack is the allowance on top of MaxDecodeFactor for small
// arguments (a topic spec, a group).
const decodeSlack = 64 << 10

// ErrDecodeCost reports arguments that would decode into too much memory.
var ErrDecodeCost = errors.New("arguments would decode into too much memory")

// Estimated allocation of items the walk does not follow into detail.
const (
	mapEntryOverhead = 16  // per pair, beside the key and value sizes, for Go's map buckets
	mapOverhead      = 64  // per map
	timeCost         = 128 // a time.Time parsed from text may allocate a fixed zone
	genericItemCost  = 64  // an item decoded into an interface value
)

var (
	rawMessageType = reflect.TypeFor[RawMessage]()
	timeType       = reflect.TypeFor[time.Time]()
)

// checkDecodeCost refuses data, the encoding of a value of type t, if
// decoding it would allocate more than MaxDecodeFactor×len(data) +
// decodeSlack bytes.
func checkDecodeCost(data []byte, t reflect.Type) error {
	limit := int64(MaxDecodeFactor)*int64(len(data)) + decodeSlack
	w := costWalker{data: data, limit: limit}
	if err := w.item(t, 0); err != nil {
		return err
	}
	if w.cost > limit {
		return fmt.Errorf("%w: about %d bytes for %d bytes of arguments", ErrDecodeCost, w.cost, len(data))
	}
	return nil
}

type costWalker struct {
	data  []byte
	pos   int
	cost  int64
	limit int64
}

const maxWalkDepth = 32 // as the decoder's MaxNestedLevels

var errMalformed = errors.New("malformed CBOR")

// head reads an item's head: major type, argument, and whether it is a
// simple value or float (major 7, whose argument is not a length).
func (w *costWalker) head() (major byte, arg uint64, err error) {
	major, arg, n, ok := readHead(w.data[w.pos:])
	if !ok {
		if w.pos < len(w.data) && w.data[w.pos]&31 > 27 {
			// Reserved, or indefinite length (refused by the decoder too).
			return 0, 0, fmt.Errorf("%w: additional information %d", errMalformed, w.data[w.pos]&31)
		}
		return 0, 0, errMalformed
	}
	w.pos += n
	return major, arg, nil
}

// add counts n bytes, failing as soon as the limit is passed so that
// the walk of a hostile item ends early.
func (w *costWalker) add(n int64) error {
	w.cost += n
	if w.cost > w.limit || w.cost < 0 {
		return fmt.Errorf("%w: over %d bytes for %d bytes of arguments", ErrDecodeCost, w.limit, len(w.data))
	}
	return nil
}

// item walks one item that decodes into a value of type t (nil: skipped,
// nothing allocated), counting what it allocates beyond t's own size.
func (w *costWalker) item(t reflect.Type, depth int) error {
	if depth > maxWalkDepth {
		return fmt.Errorf("%w: nested deeper than %d", errMalformed, maxWalkDepth)
	}
	start := w.pos
	major, arg, err := w.head()
	if err != nil {
		return err
	}
	// A count or length never exceeds the bytes left: every element
	// takes at least one.
	if major >= 2 && major <= 5 && arg > uint64(len(w.data)-w.pos) {
		return fmt.Errorf("%w: length %d beyond the data", errMalformed, arg)
	}
	n := int(arg)
	if t == rawMessageType {
		// Copied as encoded.
		if err := w.skipBody(major, n, depth); err != nil {
			return err
		}
		return w.add(int64(w.pos - start))
	}
	if t == timeType {
		if err := w.skipBody(major, n, depth); err != nil {
			return err
		}
		return w.add(timeCost)
	}
	var kind reflect.Kind
	if t != nil {
		kind = t.Kind()
	}
	switch major {
	case 0, 1, 7:
		return nil
	case 2, 3: // byte or text string
		w.pos += n
		switch {
		case kind == reflect.Interface:
			return w.add(int64(n) + genericItemCost)
		case kind == reflect.String, kind == reflect.Slice:
			return w.add(int64(n))
		}
		return nil
	case 6: // tag: its content decodes into t
		if t != nil && kind == reflect.Interface {
			if err := w.add(genericItemCost); err != nil {
				return err
			}
		}
		return w.item(t, depth+1)
	case 4: // array
		var elem reflect.Type
		switch kind {
		case reflect.Slice:
			elem = t.Elem()
			if err := w.add(int64(n) * int64(elem.Size())); err != nil {
				return err
			}
		case reflect.Array:
			elem = t.Elem()
		case reflect.Interface:
			elem = t
			if err := w.add(genericItemCost + int64(n)*16); err != nil {
				return err
			}
		case reflect.Pointer:
			if err := w.add(int64(t.Elem().Size())); err != nil {
				return err
			}
			w.pos = start
			return w.item(t.Elem(), depth+1)
		case reflect.Struct:
			// Its fields in order if it is encoded as an array (else
			// the decoder refuses it; the items are walked all the same).
			order := structFields(t).order
			for i := range n {
				var ft reflect.Type
				if i < len(order) {
					ft = order[i]
				}
				if err := w.item(ft, depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		for range n {
			if err := w.item(elem, depth+1); err != nil {
				return err
			}
		}
		return nil
	case 5: // map
		switch kind {
		case reflect.Map:
			k, v := t.Key(), t.Elem()
			if err := w.add(mapOverhead + int64(n)*(int64(k.Size()+v.Size())+mapEntryOverhead)); err != nil {
				return err
			}
			for range n {
				if err := w.item(k, depth+1); err != nil {
					return err
				}
				if err := w.item(v, depth+1); err != nil {
					return err
				}
			}
			return nil
		case reflect.Struct:
			fields := structFields(t)
			for range n {
				name, err := w.key(depth + 1)
				if err != nil {
					return err
				}
				if err := w.item(fields.lookup(name), depth+1); err != nil {
					return err
				}
			}
			return nil
		case reflect.Interface:
			if err := w.add(mapOverhead + int64(n)*(32+mapEntryOverhead)); err != nil {
				return err
			}
			for range 2 * n {
				if err := w.item(t, depth+1); err != nil {
					return err
				}
			}
			return nil
		case reflect.Pointer:
			if err := w.add(int64(t.Elem().Size())); err != nil {
				return err
			}
			w.pos = start
			return w.item(t.Elem(), depth+1)
		}
		return w.skipBody(major, n, depth)
	}
	return nil
}

// key reads a struct's map key: the text of a text key, nil for any other
// (which matches no field).
func (w *costWalker) key(depth int) ([]byte, error) {
	start := w.pos
	major, arg, err := w.head()
	if err != nil {
		return nil, err
	}
	if major == 3 {
		if arg > uint64(len(w.data)-w.pos) {
			return nil, errMalformed
		}
		s := w.data[w.pos : w.pos+int(arg)]
		w.pos += int(arg)
		return s, nil
	}
	w.pos = start
	return nil, w.item(nil, depth)
}

// skipBody skips what follows an item's head.
func (w *costWalker) skipBody(major byte, n, depth int) error {
	switch major {
	case 2, 3:
		if n > len(w.data)-w.pos {
			return errMalformed
		}
		w.pos += n
	case 4:
		for range n {
			if err := w.item(nil, depth+1); err != nil {
				return err
			}
		}
	case 5:
		for range 2 * n {
			if err := w.item(nil, depth+1); err != nil {
				return err
			}
		}
	case 6:
		return w.item(nil, depth+1)
	}
	return nil
}

// fieldTable maps a struct's CBOR field names to their types, as the
// decoder matches them: exactly, else ignoring case; and for a struct
// encoded as an array (a blank field tagged `cbor:",toarray"`), its
// fields' types in order.
type fieldTable struct {
	exact map[string]reflect.Type
	fold  map[string]reflect.Type
	order []reflect.Type // nil unless toarray
}

func (f *fieldTable) lookup(name []byte) reflect.Type {
	if t, ok := f.exact[string(name)]; ok { // no allocation for a map index
		return t
	}
	if len(name) > 64 {
		return nil // no field name is that long
	}
	var lower [64]byte
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	return f.fold[string(lower[:len(name)])]
}

var fieldTables sync.Map // reflect.Type → *fieldTable

func structFields(t reflect.Type) *fieldTable {
	if f, ok := fieldTables.Load(t); ok {
		return f.(*fieldTable)
	}
	f := &fieldTable{exact: map[string]reflect.Type{}, fold: map[string]reflect.Type{}}
	addFields(f, t, 0)
	if toArray(t) {
		for i := range t.NumField() {
			sf := t.Field(i)
			if name, _, _ := strings.Cut(sf.Tag.Get("cbor"), ","); sf.IsExported() && name != "-" {
				f.order = append(f.order, sf.Type)
			}
		}
	}
	fieldTables.Store(t, f)
	return f
}

// toArray reports whether t is encoded as an array of its fields.
func toArray(t reflect.Type) bool {
	for i := range t.NumField() {
		sf := t.Field(i)
		if _, opts, _ := strings.Cut(sf.Tag.Get("cbor"), ","); sf.Name == "_" && slices.Contains(strings.Split(opts, ","), "toarray") {
			return true
		}
	}
	return false
}

func addFields(f *fieldTable, t reflect.Type, depth int) {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("cbor")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct && depth < 8 {
			addFields(f, sf.Type, depth+1) // promoted fields
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if _, dup := f.exact[name]; !dup {
			f.exact[name] = sf.Type
		}
		if _, dup := f.fold[strings.ToLower(name)]; !dup {
			f.fold[strings.ToLower(name)] = sf.Type
		}
	}
}
