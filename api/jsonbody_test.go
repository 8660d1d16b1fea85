package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestCheckBody(t *testing.T) {
	tests := []struct {
		body string
		path string // of the duplicate; "-" for none
		key  string
	}{
		{`{"name":"a","description":"b"}`, "-", ""},
		{`{"name":"a","name":"b"}`, "", "name"},
		{`{"name":"a","Name":"b"}`, "-", ""}, // exactNames refuses Name
		{`{"nameſ":"a","NAMES":"b"}`, "-", ""},
		{`{"techpass":{"apiKey":{"env":"A","env":"B"}}}`, "techpass.apiKey", "env"},
		{`{"users":[{"a":1},{"a":1,"b":2,"a":3}]}`, "users[1]", "a"},
		{`{"a":{"x":1},"b":{"x":1}}`, "-", ""},
		{`{"a":[[{"k":1}],{"k":[1,{"k":2,"k":3}]}]}`, "a[1].k[1]", "k"},
		{`{"a":{}, "a":1}`, "", "a"},
		{`{"x":"{\"y\":1,\"y\":2}"}`, "-", ""},
		{`{"a":1} {"a":1}`, "-", ""}, // one value is read; the decoder refuses the rest
		{`{"a":`, "-", ""},           // syntax: the decoder words it
	}
	for _, tt := range tests {
		_, err := checkBody([]byte(tt.body))
		var de *DuplicateKeyError
		if tt.path == "-" {
			if err != nil {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		}
		if !errors.As(err, &de) || de.Path != tt.path || de.Key != tt.key {
			t.Errorf("%s: %v, want %q in %q", tt.body, err, tt.key, tt.path)
		}
	}
	for _, body := range []string{`null`, `[]`, `"x"`, `1`, ` true`, `[{"a":1,"a":2}]`} {
		if _, err := checkBody([]byte(body)); !errors.Is(err, errNotObject) {
			t.Errorf("%s: %v, want not an object", body, err)
		}
	}
}

func TestDecodeStrictWordsJSONTypes(t *testing.T) {
	var in TenantInput
	tests := []struct{ body, want string }{
		{`{"name":"SHIP","groupLimit":"5"}`, `Field "groupLimit" must be a JSON integer.`},
		{`{"name":"SHIP","groupLimit":1.5}`, `Field "groupLimit" must be a JSON integer.`},
		{`{"name":"SHIP","disabled":"yes"}`, `Field "disabled" must be a JSON boolean.`},
		{`{"name":"SHIP","intervalSeconds":"1"}`, `Field "intervalSeconds" must be a JSON number.`},
		{`{"name":"SHIP","techpass":[]}`, `Field "techpass" must be a JSON object.`},
		{`{"name":7}`, `Field "name" must be a JSON string.`},
		{`null`, `The body must be a JSON object.`},
		{`[1]`, `The body must be a JSON object.`},
		{`{"name":"SHIP","name":"SHIP"}`, `The body has the member "name" twice.`},
		{`{"NAME":"SHIP"}`, `The body has an unknown member "NAME": member names are case-sensitive (did you mean "name"?).`},
		{`{"name":"SHIP","name":"SHIP"}`, `The body has the member "name" twice.`},
		{`{"name":"SHIP","techpass":{"apiKey":{"ENV":"A"}}}`, `The object techpass.apiKey has an unknown member "ENV": member names are case-sensitive (did you mean "env"?).`},
		{`{"name":"SHIP","intervalſeconds":1}`, `The body has an unknown member "intervalſeconds": member names are case-sensitive (did you mean "intervalSeconds"?).`},
	}
	for _, tt := range tests {
		err := decodeStrict([]byte(tt.body), &in)
		var ae *Error
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Detail != tt.want {
			t.Errorf("%s: %v, want 400 %q", tt.body, err, tt.want)
		}
		if strings.Contains(ae.Detail, "int32") || strings.Contains(ae.Detail, "struct") {
			t.Errorf("%s: detail names a Go type: %s", tt.body, ae.Detail)
		}
	}
	var members MembersRequest
	err := decodeStrict([]byte(`{"users":[1]}`), &members)
	var ae *Error
	if !errors.As(err, &ae) || !strings.Contains(ae.Detail, "JSON string") {
		t.Errorf("users of numbers: %v", err)
	}
}

// FuzzCheckBody feeds arbitrary bodies to checkBody. It never panics; a
// body it passes that is one valid JSON value is an object whose objects
// (at any depth) hold each member once: an independent count over the
// decoded tree (where a repeated member would be merged) finds every
// member checkBody read.
func FuzzCheckBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		members, err := checkBody(body)
		var v any
		if json.Unmarshal(body, &v) != nil {
			return // not one valid JSON value: the decoder refuses it
		}
		if _, isObject := v.(map[string]any); !isObject {
			if !errors.Is(err, errNotObject) {
				t.Fatalf("%q: not an object, but checkBody said %v", body, err)
			}
			return
		}
		var de *DuplicateKeyError
		if errors.As(err, &de) {
			if !strings.Contains(string(body), de.Key[:min(len(de.Key), 1)]) {
				t.Fatalf("%q: reported key %q is not in the body", body, de.Key)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if got := countMembers(t, v); got != members {
			t.Fatalf("%q: the decoded tree has %d members, checkBody read %d: a duplicate was merged", body, got, members)
		}
	})
}

// countMembers counts the members of every object in v.
func countMembers(t *testing.T, v any) int {
	switch x := v.(type) {
	case map[string]any:
		n := len(x)
		for _, e := range x {
			n += countMembers(t, e)
		}
		return n
	case []any:
		n := 0
		for _, e := range x {
			n += countMembers(t, e)
		}
		return n
	default:
		return 0
	}
}
