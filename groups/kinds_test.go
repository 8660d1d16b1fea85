package groups

import (
	"errors"
	"reflect"
	"testing"
	"time"

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

// TestUndoByKind: Undo asks the kind's payload type. An operation of a
// kind this version does not know gets no effect at all (before, it got
// CreateFailed, which would remove a group of its target's name); a
// payload that does not decode is undone as its kind's; an update restores
// the Previous its payload carries.
func TestUndoByKind(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)
	n := Name{Tenant: "SHIP", Project: "MOH", Group: "billing"}
	op := func(kind, payload string) queue.Operation {
		return queue.Operation{ID: "op-1", Kind: kind, Target: n.String(), Payload: []byte(payload), CreatedAt: at.Add(-time.Hour)}
	}
	cases := []struct {
		op   queue.Operation
		want []Effect
	}{
		{op("group.rename", `{"fullName":"SHIP:MOH:billing"}`), nil},
		{op("", `{}`), nil},
		{op(KindCreate, `{"fullName":"SHIP:MOH:billing"}`), []Effect{CreateFailed{Name: n}}},
		{op(KindCreate, `{"fullName":`), []Effect{CreateFailed{Name: n}}},
		{op(KindDelete, `{"fullName":"SHIP:MOH:billing"}`), []Effect{DeleteFailed{Name: n, At: at}}},
		{op(KindUpdate, `{"fullName":"SHIP:MOH:billing","description":"new","previous":"old"}`),
			[]Effect{UpdateFailed{Name: n, Operation: "op-1", Previous: "old", At: at}}},
		{op(KindMembers, `{"fullName":"SHIP:MOH:billing","add":["ann@x.gov.sg"]}`),
			[]Effect{MembersSettled{Name: n, QueuedAt: at.Add(-time.Hour)}}},
	}
	for _, tc := range cases {
		if got := Undo(tc.op, at); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Undo(%q %s) = %#v, want %#v", tc.op.Kind, tc.op.Payload, got, tc.want)
		}
	}
}
