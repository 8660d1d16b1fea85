package groups

import (
	"errors"
	"reflect"
	"testing"

	"github.com/groupgate/groupgate/queue"
)

// TestStoredPayloadsOfEarlierVersions: the payload bytes an earlier version
// stored (written here literally, as its Service encoded them) decode to
// the typed payload of their kind, and encoding that payload gives the
// same bytes: the stored shape has not changed.
func TestStoredPayloadsOfEarlierVersions(t *testing.T) {
	cases := []struct {
		kind   string
		stored string
		want   payload
	}{
		{KindCreate, `{"fullName":"SHIP:MOH:billing","description":"Billing team"}`,
			createPayload{FullName: "SHIP:MOH:billing", Description: "Billing team"}},
		{KindCreate, `{"fullName":"SHIP:MOH:billing","description":""}`,
			createPayload{FullName: "SHIP:MOH:billing"}},
		{KindDelete, `{"fullName":"SHIP:MOH:billing","upstreamId":"6f1c0e9a-3b2d-4c5e-8f70-1a2b3c4d5e6f"}`,
			deletePayload{FullName: "SHIP:MOH:billing", UpstreamID: "6f1c0e9a-3b2d-4c5e-8f70-1a2b3c4d5e6f"}},
		{KindDelete, `{"fullName":"SHIP:MOH:billing"}`,
			deletePayload{FullName: "SHIP:MOH:billing"}},
		{KindUpdate, `{"fullName":"SHIP:MOH:billing","description":"new","previous":"old"}`,
			updatePayload{FullName: "SHIP:MOH:billing", Description: "new", Previous: "old"}},
		{KindMembers, `{"fullName":"SHIP:MOH:billing","add":["ann@x.gov.sg","00000000-0000-4000-8000-000000000001"],"remove":["bob@x.gov.sg"],"unchanged":["cat@x.gov.sg"]}`,
			membersPayload{FullName: "SHIP:MOH:billing", Add: []string{"ann@x.gov.sg", "00000000-0000-4000-8000-000000000001"},
				Remove: []string{"bob@x.gov.sg"}, Unchanged: []string{"cat@x.gov.sg"}}},
		{KindMembers, `{"fullName":"SHIP:MOH:billing","remove":["bob@x.gov.sg"]}`,
			membersPayload{FullName: "SHIP:MOH:billing", Remove: []string{"bob@x.gov.sg"}}},
	}
	v := NewValidator()
	for _, tc := range cases {
		t.Run(tc.stored, func(t *testing.T) {
			op := queue.Operation{ID: "op_1", Kind: tc.kind, Target: "SHIP:MOH:billing", Payload: []byte(tc.stored)}
			name, got, err := decodeOperation(v, op)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) || got.kind() != tc.kind {
				t.Errorf("decoded %#v (kind %s), want %#v (kind %s)", got, got.kind(), tc.want, tc.kind)
			}
			if name.String() != "SHIP:MOH:billing" || name.Tenant != "SHIP" || name.Project != "MOH" || name.Group != "billing" {
				t.Errorf("name %+v", name)
			}
			b, err := encodePayload(got)
			if err != nil || string(b) != tc.stored {
				t.Errorf("encoded again: %s (%v), want the stored bytes %s", b, err, tc.stored)
			}
		})
	}
}

// TestUndecodableOperations: an unknown kind, a payload that is not its
// kind's JSON, and one naming no valid group are told apart.
func TestUndecodableOperations(t *testing.T) {
	cases := []struct {
		kind, payload string
		want          error
	}{
		{"group.rename", `{"fullName":"SHIP:MOH:billing"}`, errUnknownKind},
		{"", `{}`, errUnknownKind},
		{KindCreate, `{"fullName":`, errCorrupt},
		{KindMembers, `{"fullName":"SHIP:MOH:billing","add":"ann@x.gov.sg"}`, errCorrupt},
		{KindDelete, `{"fullName":"SHIP:MOH"}`, errCorrupt},
		{KindUpdate, `{"fullName":"ship:MOH:billing","description":"d"}`, errCorrupt},
	}
	v := NewValidator()
	for _, tc := range cases {
		_, p, err := decodeOperation(v, queue.Operation{Kind: tc.kind, Payload: []byte(tc.payload)})
		if !errors.Is(err, tc.want) || p != nil {
			t.Errorf("%s %s: payload %#v, error %v; want %v", tc.kind, tc.payload, p, err, tc.want)
		}
	}
}
