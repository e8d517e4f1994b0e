package wire

// The counts inside a request body are checked here before kmsg decodes
// it. kmsg's generated decoders trust two kinds of count more than an
// agent may:
//
//   - an array's element count is only checked against the bytes left
//     (one byte per element), and the decoder then allocates the whole
//     slice at once: a frame of n bytes could make it allocate n times
//     the size of the element's Go struct (often 50 to 300 bytes), which
//     a 100 MiB frame turns into gigabytes;
//   - a tagged-field count is not checked at all: a count of 2^32-1 in a
//     30-byte frame makes the decoder loop for seconds after its input
//     ran out.
//
// scanBody walks the body with the request's wire layout and rejects any
// array whose count times its element's smallest encoding exceeds the
// bytes left, and any tag section whose count exceeds half of them (a tag
// is at least a key and a size). After it, every slice kmsg allocates is
// backed by that many bytes of frame, so decoding a frame of n bytes
// allocates at most a small multiple of n, and every loop is bounded by n.
//
// Tag sections are skipped by their sizes. kmsg decodes the tagged
// fields it knows from within the tag's own bytes, and no request it
// knows (v1.15) has an array of structs among its tagged fields, so what
// it allocates there is bounded by those bytes too.
//
// The layouts are not written by hand: they are learnt from kmsg's own
// encoders, once per key and version, by encoding a request with one field
// set at a time and seeing what changes (layoutOf). The tests check them
// against every request kmsg can encode.

import (
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fieldKind is how one field is laid out on the wire.
type fieldKind uint8

const (
	fixedField      fieldKind = iota // size bytes
	stringField                      // int16 length (compact: uvarint length+1), -1 null
	bytesField                       // int32 length (compact: uvarint length+1), -1 null
	arrayField                       // int32 count (compact: uvarint count+1), then elem count times
	structField                      // st inline
	nullStructField                  // int8 -1 (null) or anything else followed by st
)

type fieldLayout struct {
	kind fieldKind
	size int          // fixedField
	elem *fieldLayout // arrayField
	st   *layout      // structField, nullStructField
}

// layout is a struct's inline fields in wire order; in flexible versions a
// tag section follows them.
type layout struct {
	fields   []fieldLayout
	flexible bool
	min      int // bytes of the smallest encoding
}

func (f *fieldLayout) minSize(flexible bool) int {
	switch f.kind {
	case fixedField:
		return f.size
	case stringField:
		if flexible {
			return 1
		}
		return 2
	case bytesField, arrayField:
		if flexible {
			return 1
		}
		return 4
	case nullStructField:
		return 1
	default: // structField
		return f.st.min
	}
}

// ErrTooManyElements reports a count in a request body that the bytes
// after it cannot hold; the frame is malformed (it wraps ErrMalformed).
var ErrTooManyElements = fmt.Errorf("%w: count exceeds the bytes that follow", ErrMalformed)

// scanBody checks every count in body against the bytes that follow it.
func scanBody(l *layout, body []byte) error {
	r := kbin.Reader{Src: body}
	if err := scanStruct(&r, l, 0); err != nil {
		return err
	}
	if !r.Ok() {
		return fmt.Errorf("%w: body ends early", ErrMalformed)
	}
	return nil
}

// maxDepth bounds the nesting scanStruct follows; kmsg's request structs
// nest at most a few levels.
const maxDepth = 16

func scanStruct(r *kbin.Reader, l *layout, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nesting deeper than %d", ErrMalformed, maxDepth)
	}
	for i := range l.fields {
		if err := scanField(r, &l.fields[i], l.flexible, depth); err != nil {
			return err
		}
		if !r.Ok() {
			return fmt.Errorf("%w: body ends early", ErrMalformed)
		}
	}
	if l.flexible {
		n := r.Uvarint()
		if int64(n)*2 > int64(len(r.Src)) {
			return fmt.Errorf("%w: %d tagged fields in %d bytes", ErrTooManyElements, n, len(r.Src))
		}
		for ; n > 0 && r.Ok(); n-- {
			r.Uvarint() // tag
			r.Span(int(r.Uvarint()))
		}
	}
	return nil
}

func scanField(r *kbin.Reader, f *fieldLayout, flexible bool, depth int) error {
	switch f.kind {
	case fixedField:
		r.Span(f.size)
	case stringField:
		var n int
		if flexible {
			n = int(r.Uvarint()) - 1
		} else {
			n = int(r.Int16())
		}
		if n > 0 {
			r.Span(n)
		}
	case bytesField:
		var n int
		if flexible {
			n = int(r.Uvarint()) - 1
		} else {
			n = int(r.Int32())
		}
		if n > 0 {
			r.Span(n)
		}
	case arrayField:
		// The count is read as kmsg reads it, so both see the same
		// number; zero or less is an empty (or null) array.
		var n int32
		if flexible {
			n = int32(r.Uvarint()) - 1
		} else {
			n = r.Int32()
		}
		if !r.Ok() || n <= 0 {
			return nil
		}
		min := f.elem.minSize(flexible)
		if int64(n)*int64(min) > int64(len(r.Src)) {
			return fmt.Errorf("%w: %d elements of at least %d bytes in %d bytes", ErrTooManyElements, n, min, len(r.Src))
		}
		for ; n > 0 && r.Ok(); n-- {
			if err := scanField(r, f.elem, flexible, depth+1); err != nil {
				return err
			}
		}
	case structField:
		return scanStruct(r, f.st, depth+1)
	case nullStructField:
		if r.Int8() != -1 && r.Ok() {
			return scanStruct(r, f.st, depth+1)
		}
	}
	return nil
}

// layouts caches layoutOf by key and version.
var layouts sync.Map // [2]int16 → layoutResult

type layoutResult struct {
	l   *layout
	err error
}

// requestLayout returns the wire layout of a request body.
func requestLayout(key, version int16) (*layout, error) {
	k := [2]int16{key, version}
	if v, ok := layouts.Load(k); ok {
		r := v.(layoutResult)
		return r.l, r.err
	}
	l, err := layoutOf(key, version)
	layouts.Store(k, layoutResult{l, err})
	return l, err
}

// layoutOf learns a request's layout from kmsg's encoder. For each field
// of each struct (reached through a request with one element in every
// array on the way), it encodes the request with that field changed and
// with it at its default: a field that changes nothing is not in this
// version; a field whose first changed byte is at or after the struct's
// tag count is a tagged field, which the scan skips with the tag section;
// every other field is inline, in the order of the Go struct, which is
// kmsg's wire order.
func layoutOf(key, version int16) (l *layout, err error) {
	defer func() {
		if p := recover(); p != nil {
			l, err = nil, fmt.Errorf("layout of key %d v%d: %v", key, version, p)
		}
	}()
	req := kmsg.RequestForKey(key)
	if req == nil {
		return nil, fmt.Errorf("unknown key %d", key)
	}
	p := prober{key: key, version: version}
	req.SetVersion(version)
	p.flexible = req.IsFlexible()
	return p.structLayout(nil, reflect.TypeOf(req).Elem())
}

type prober struct {
	key, version int16
	flexible     bool
}

var tagsType = reflect.TypeOf(kmsg.Tags{})

// build returns a fresh request and the struct at path in it, adding one
// zero element to every array (and allocating every nullable struct) on
// the way.
func (p *prober) build(path []int) (kmsg.Request, reflect.Value) {
	req := kmsg.RequestForKey(p.key)
	req.SetVersion(p.version)
	v := reflect.ValueOf(req).Elem()
	for _, i := range path {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Slice:
			f.Set(reflect.Append(f, newDefault(f.Type().Elem()).Elem()))
			v = f.Index(0)
		case reflect.Pointer:
			f.Set(newDefault(f.Type().Elem()))
			v = f.Elem()
		default:
			v = f
		}
	}
	return req, v
}

// newDefault returns a pointer to a new t with kmsg's defaults, so that
// its tagged fields are left out as in a real request.
func newDefault(t reflect.Type) reflect.Value {
	v := reflect.New(t)
	if d, ok := v.Interface().(interface{ Default() }); ok {
		d.Default()
	}
	return v
}

func encode(req kmsg.Request) []byte { return req.AppendTo(nil) }

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) == len(b) {
		return -1
	}
	return min(len(a), len(b))
}

func (p *prober) structLayout(path []int, t reflect.Type) (*layout, error) {
	if len(path) > maxDepth {
		return nil, errors.New("nesting too deep")
	}
	l := &layout{flexible: p.flexible}
	req, _ := p.build(path)
	base := encode(req)
	tagAt := -1
	if p.flexible {
		if f, ok := t.FieldByName("UnknownTags"); ok && f.Type == tagsType {
			req, s := p.build(path)
			s.FieldByIndex(f.Index).Addr().Interface().(*kmsg.Tags).Set(1<<20, []byte{1})
			tagAt = firstDiff(base, encode(req))
		}
		if tagAt < 0 {
			return nil, fmt.Errorf("%v: no tag section found in a flexible version", t)
		}
	}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Type == tagsType || (len(path) == 0 && sf.Name == "Version") || !sf.IsExported() {
			continue
		}
		req, s := p.build(path)
		setDeep(s.Field(i), 0)
		d := firstDiff(base, encode(req))
		if d < 0 || (tagAt >= 0 && d >= tagAt) {
			continue // not in this version, or tagged
		}
		fl, err := p.fieldLayout(append(path[:len(path):len(path)], i), sf.Type)
		if err != nil {
			return nil, fmt.Errorf("%v.%s: %w", t, sf.Name, err)
		}
		l.fields = append(l.fields, *fl)
	}
	for i := range l.fields {
		l.min += l.fields[i].minSize(l.flexible)
	}
	if l.flexible {
		l.min++
	}
	return l, nil
}

func (p *prober) fieldLayout(path []int, t reflect.Type) (*fieldLayout, error) {
	switch t.Kind() {
	case reflect.Bool, reflect.Int8, reflect.Uint8:
		return &fieldLayout{kind: fixedField, size: 1}, nil
	case reflect.Int16, reflect.Uint16:
		return &fieldLayout{kind: fixedField, size: 2}, nil
	case reflect.Int32, reflect.Uint32:
		return &fieldLayout{kind: fixedField, size: 4}, nil
	case reflect.Int64, reflect.Uint64, reflect.Float64:
		return &fieldLayout{kind: fixedField, size: 8}, nil
	case reflect.Array:
		if t.Elem().Kind() != reflect.Uint8 {
			return nil, fmt.Errorf("unexpected array type %v", t)
		}
		return &fieldLayout{kind: fixedField, size: t.Len()}, nil
	case reflect.String:
		return &fieldLayout{kind: stringField}, nil
	case reflect.Pointer:
		switch t.Elem().Kind() {
		case reflect.String:
			return &fieldLayout{kind: stringField}, nil
		case reflect.Struct:
			st, err := p.structLayout(path, t.Elem())
			if err != nil {
				return nil, err
			}
			return &fieldLayout{kind: nullStructField, st: st}, nil
		}
	case reflect.Struct:
		st, err := p.structLayout(path, t)
		if err != nil {
			return nil, err
		}
		return &fieldLayout{kind: structField, st: st}, nil
	case reflect.Slice:
		et := t.Elem()
		if et.Kind() == reflect.Uint8 {
			return &fieldLayout{kind: bytesField}, nil
		}
		var elem *fieldLayout
		var err error
		if et.Kind() == reflect.Struct {
			var st *layout
			if st, err = p.structLayout(path, et); err == nil {
				elem = &fieldLayout{kind: structField, st: st}
			}
		} else {
			elem, err = p.fieldLayout(nil, et)
		}
		if err != nil {
			return nil, err
		}
		return &fieldLayout{kind: arrayField, elem: elem}, nil
	}
	return nil, fmt.Errorf("unexpected type %v", t)
}

// setDeep changes v to a value that encodes differently from the one it
// has (kmsg's defaults are not always zero): numbers to another number,
// strings one byte longer, arrays one element longer, structs with every
// field changed the same way.
func setDeep(v reflect.Value, depth int) {
	if depth > maxDepth {
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() ^ 1)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() ^ 1)
	case reflect.Float64:
		v.SetFloat(v.Float() + 1)
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Array:
		if v.Len() > 0 {
			setDeep(v.Index(0), depth+1)
		}
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		setDeep(v.Elem(), depth+1)
	case reflect.Slice:
		e := reflect.New(v.Type().Elem()).Elem()
		setDeep(e, depth+1)
		v.Set(reflect.Append(v, e))
	case reflect.Struct:
		if v.Type() == tagsType {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				setDeep(v.Field(i), depth+1)
			}
		}
	}
}
