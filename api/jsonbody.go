package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// errNotObject is checkBody's answer for a body that is valid JSON but not
// an object (null, a string, an array...).
var errNotObject = errors.New("the body is not a JSON object")

// DuplicateKeyError names a member that an object of the body holds twice.
type DuplicateKeyError struct {
	// Path is the object's place in the body, e.g. techpass.apiKey or
	// users[2]; empty for the body itself.
	Path string
	// Key is the member's name.
	Key string
}

func (e *DuplicateKeyError) Error() string {
	if e.Path == "" {
		return "duplicate member " + strconv.Quote(e.Key)
	}
	return "duplicate member " + strconv.Quote(e.Key) + " in " + e.Path
}

// checkBody reads raw as one JSON value and refuses what json.Unmarshal
// would silently accept: an object that holds a member twice (at any depth;
// the last would win) and a body that is not an object (null would decode
// into a struct as if nothing had been sent). It returns nil for a body it
// cannot read as JSON, leaving the decoder to word the syntax error. It
// returns the number of object members read, for tests.
func checkBody(raw []byte) (members int, err error) {
	type frame struct {
		object  bool
		wantKey bool
		path    string
		index   int
		key     string
		keys    map[string]struct{}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var stack []*frame
	first := true
	for {
		tok, terr := dec.Token()
		if terr == io.EOF {
			return members, nil
		}
		if terr != nil {
			return members, nil // a syntax error: the decoder words it
		}
		if first {
			first = false
			if tok != json.Delim('{') {
				return 0, errNotObject
			}
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				continue
			}
			key, _ := tok.(string)
			if _, dup := top.keys[key]; dup {
				return members, &DuplicateKeyError{Path: top.path, Key: key}
			}
			top.keys[key] = struct{}{}
			top.key, top.wantKey = key, false
			members++
			continue
		}
		// tok begins or ends a value.
		if tok == json.Delim('}') || tok == json.Delim(']') {
			stack = stack[:len(stack)-1]
			continue
		}
		path := ""
		if top != nil {
			if top.object {
				path = joinPath(top.path, top.key)
				top.wantKey = true
			} else {
				path = top.path + "[" + strconv.Itoa(top.index) + "]"
				top.index++
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, wantKey: true, path: path, keys: map[string]struct{}{}})
		case json.Delim('['):
			stack = append(stack, &frame{path: path})
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// MemberCaseError names a member whose name matches a field of the body's
// type only case-insensitively. encoding/json would take "NAME" (or
// "nameſ" for "names") for "name"; the contract names members exactly and
// allows no others.
type MemberCaseError struct {
	// Path is the object's place in the body; empty for the body itself.
	Path string
	// Key is the member as sent, Want the name the contract gives it.
	Key, Want string
}

func (e *MemberCaseError) Error() string {
	return fmt.Sprintf("member %q of %q is spelt %q", e.Want, e.Path, e.Key)
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// exactNames checks raw, already decoded into a value of type t, for
// members that matched a field only case-insensitively.
func exactNames(raw []byte, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil // it reads its own JSON (time.Time)
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fields[name] = f.Type
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if ft, ok := fields[k]; ok {
				if err := exactNames(obj[k], ft, joinPath(path, k)); err != nil {
					return err
				}
				continue
			}
			for name := range fields {
				if strings.EqualFold(name, k) { // as encoding/json matches them
					return &MemberCaseError{Path: path, Key: k, Want: name}
				}
			}
		}
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil
		}
		for i, item := range items {
			if err := exactNames(item, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case reflect.Map:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if err := exactNames(obj[k], t.Elem(), joinPath(path, k)); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonType names the JSON type that decodes into a Go type, for callers
// who never saw the Go type.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	default:
		return "another type"
	}
}
