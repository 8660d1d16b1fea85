package pgstore

import (
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/queue"
)

// The JSON documents of the operations, groups and owners tables. Field
// names are part of the schema: change them only with a migration. They are
// boltstore's records, so a document reads the same in either store.

// operationRecord is an operations row's doc. An operation's Idempotency
// is not kept with it (the idempotency table holds the key).
type operationRecord struct {
	ID           string         `json:"id"`
	Tenant       string         `json:"tenant"`
	Project      string         `json:"project"`
	Kind         string         `json:"kind"`
	Target       string         `json:"target"`
	Payload      []byte         `json:"payload,omitempty"`
	Progress     []byte         `json:"progress,omitempty"`
	Actor        string         `json:"actor,omitempty"`
	State        string         `json:"state"`
	Seq          uint64         `json:"seq"`
	Attempts     int            `json:"attempts"`
	Failures     int            `json:"failures,omitempty"`
	NotBefore    time.Time      `json:"notBefore,omitzero"`
	LastError    string         `json:"lastError,omitempty"`
	Result       []byte         `json:"result,omitempty"`
	Failure      *failureRecord `json:"failure,omitempty"`
	CreatedAt    time.Time      `json:"createdAt"`
	UpdatedAt    time.Time      `json:"updatedAt"`
	StartedAt    time.Time      `json:"startedAt,omitzero"`
	FinishedAt   time.Time      `json:"finishedAt,omitzero"`
	FailingSince time.Time      `json:"failingSince,omitzero"`
}

type failureRecord struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail,omitempty"`
}

func newOperationRecord(op queue.Operation) operationRecord {
	r := operationRecord{
		ID: op.ID, Tenant: op.Tenant, Project: op.Project, Kind: op.Kind, Target: op.Target,
		Payload: op.Payload, Progress: op.Progress, Actor: op.Actor, State: string(op.State), Seq: op.Seq,
		Attempts: op.Attempts, Failures: op.Failures, NotBefore: op.NotBefore, LastError: op.LastError,
		Result: op.Result, CreatedAt: op.CreatedAt, UpdatedAt: op.UpdatedAt,
		StartedAt: op.StartedAt, FinishedAt: op.FinishedAt, FailingSince: op.FailingSince,
	}
	if op.Failure != nil {
		r.Failure = &failureRecord{Status: op.Failure.Status, Title: op.Failure.Title, Detail: op.Failure.Detail}
	}
	return r
}

func (r operationRecord) operation() queue.Operation {
	op := queue.Operation{
		ID: r.ID, Tenant: r.Tenant, Project: r.Project, Kind: r.Kind, Target: r.Target,
		Payload: r.Payload, Progress: r.Progress, Actor: r.Actor, State: queue.State(r.State), Seq: r.Seq,
		Attempts: r.Attempts, Failures: r.Failures, NotBefore: r.NotBefore, LastError: r.LastError,
		Result: r.Result, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, FailingSince: r.FailingSince,
	}
	if r.Failure != nil {
		op.Failure = &queue.Failure{Status: r.Failure.Status, Title: r.Failure.Title, Detail: r.Failure.Detail}
	}
	return op
}

// groupRecord is a groups row's doc; the tenant is the row's.
type groupRecord struct {
	Project         string    `json:"project"`
	Group           string    `json:"group"`
	Description     string    `json:"description"`
	State           string    `json:"state"`
	UpstreamID      string    `json:"upstreamId,omitempty"`
	PendingOp       string    `json:"pendingOp,omitempty"`
	PendingUpdate   string    `json:"pendingUpdate,omitempty"`
	Revision        uint64    `json:"revision,omitempty"`
	SyncedAt        time.Time `json:"syncedAt,omitzero"`
	MembersSyncedAt time.Time `json:"membersSyncedAt,omitzero"`
	MembersVersion  uint64    `json:"membersVersion,omitempty"`
	MemberCount     int       `json:"memberCount,omitempty"`
	PendingMembers  int       `json:"pendingMembers,omitempty"`
	Confirmed       *string   `json:"confirmedDescription,omitempty"`
	CreatedAt       time.Time `json:"createdAt"`
	UpdatedAt       time.Time `json:"updatedAt"`
}

func newGroupRecord(g groups.Group) groupRecord {
	r := groupRecord{
		Project: g.Name.Project, Group: g.Name.Group, Description: g.Description, State: string(g.State),
		UpstreamID: g.UpstreamID, PendingOp: g.PendingOperation, PendingUpdate: g.PendingUpdate,
		Revision: g.Revision, SyncedAt: g.SyncedAt, MembersSyncedAt: g.MembersSyncedAt,
		MembersVersion: g.MembersVersion, MemberCount: g.MemberCount, PendingMembers: g.PendingMembers,
		CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt,
	}
	if g.DescriptionConfirmed {
		r.Confirmed = &g.ConfirmedDescription
	}
	return r
}

func (r groupRecord) group(tenant string) groups.Group {
	g := groups.Group{
		Name:        groups.Name{Tenant: tenant, Project: r.Project, Group: r.Group},
		Description: r.Description, State: groups.State(r.State), UpstreamID: r.UpstreamID,
		PendingOperation: r.PendingOp, PendingUpdate: r.PendingUpdate, Revision: r.Revision,
		SyncedAt: r.SyncedAt, MembersSyncedAt: r.MembersSyncedAt,
		MembersVersion: r.MembersVersion, MemberCount: r.MemberCount, PendingMembers: r.PendingMembers,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if r.Confirmed != nil {
		g.ConfirmedDescription, g.DescriptionConfirmed = *r.Confirmed, true
	}
	return g
}

// ownersRecord is an owners row's doc.
type ownersRecord struct {
	UpstreamID string       `json:"upstreamId,omitempty"`
	Owners     []userRecord `json:"owners"`
}

type userRecord struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	DisplayName string `json:"displayName,omitempty"`
}
