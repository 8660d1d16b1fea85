-- Schema version 2: the group mirror and the operation queue of every
-- tenant (groups.Store), with idempotency records, deleted-user marks and
-- webhook delivery records (webhooks.Store).
--
-- Every row but an idempotency record's belongs to one tenant, and is
-- written only inside groups.Store.Update (or UpdateOperation), which holds
-- the tenant's transaction-scoped advisory lock (see groups.go): the
-- tables need no row locks of their own to keep the domain's invariants.
-- Text that may hold a NUL in Go (cursors) is split into columns whose
-- order, with the "C" collation, is the cursor's byte order.

-- Per tenant: the queue's sequence (Append), the revision sequence
-- (NextRevision) and the mirror's sync time (SetGroupsSyncedAt).
CREATE TABLE mirror_tenants (
	tenant           text COLLATE "C" PRIMARY KEY,
	queue_seq        bigint NOT NULL DEFAULT 0,
	revision         bigint NOT NULL DEFAULT 0,
	groups_synced_at timestamptz
);

-- Every operation, queued or settled, as a JSON document (operationRecord).
CREATE TABLE operations (
	id     text COLLATE "C" PRIMARY KEY,
	tenant text COLLATE "C" NOT NULL,
	doc    jsonb NOT NULL
);

-- The project queues: an operation is queued while its row is here.
CREATE TABLE queue (
	tenant  text COLLATE "C" NOT NULL,
	project text COLLATE "C" NOT NULL,
	seq     bigint NOT NULL,
	op_id   text COLLATE "C" NOT NULL,
	PRIMARY KEY (tenant, project, seq)
);
CREATE INDEX queue_tenant_seq ON queue (tenant, seq);

-- The pending counts, moved with every insert into and delete from queue
-- in the same statement; a project with an empty queue has n = 0 or no row.
CREATE TABLE pending (
	tenant  text COLLATE "C" NOT NULL,
	project text COLLATE "C" NOT NULL,
	n       integer NOT NULL CHECK (n >= 0),
	PRIMARY KEY (tenant, project)
);

-- Idempotency records, keyed by the caller's scope (not by tenant).
CREATE TABLE idempotency (
	scope       text COLLATE "C" NOT NULL,
	key         text COLLATE "C" NOT NULL,
	op_id       text NOT NULL,
	fingerprint text NOT NULL,
	expires     timestamptz NOT NULL,
	PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_expires ON idempotency (expires);

-- The mirrored groups (groupRecord), by project and Name.Key.
CREATE TABLE groups (
	tenant    text COLLATE "C" NOT NULL,
	project   text COLLATE "C" NOT NULL,
	group_key text COLLATE "C" NOT NULL,
	doc       jsonb NOT NULL,
	PRIMARY KEY (tenant, project, group_key)
);

-- GroupsVersion: moved by every write or removal of a project's group.
CREATE TABLE group_versions (
	tenant  text COLLATE "C" NOT NULL,
	project text COLLATE "C" NOT NULL,
	version bigint NOT NULL,
	PRIMARY KEY (tenant, project)
);

-- Member lists, in MemberCursor order: (email_key, id) where email_key is
-- the lower-cased e-mail.
CREATE TABLE members (
	tenant       text COLLATE "C" NOT NULL,
	project      text COLLATE "C" NOT NULL,
	group_key    text COLLATE "C" NOT NULL,
	email_key    text COLLATE "C" NOT NULL,
	id           text COLLATE "C" NOT NULL,
	email        text NOT NULL,
	display_name text NOT NULL,
	PRIMARY KEY (tenant, project, group_key, email_key, id)
);

-- Known users, each under two keys as PutKnownUsers stores it: kind 'i'
-- and its lower-cased id, kind 'e' and its lower-cased e-mail (the user
-- last stored with that e-mail). email_key is the user's lower-cased
-- e-mail, to find its 'e' row from its 'i' row.
CREATE TABLE known_users (
	tenant       text COLLATE "C" NOT NULL,
	kind         "char" NOT NULL,
	key          text COLLATE "C" NOT NULL,
	id           text NOT NULL,
	email        text NOT NULL,
	email_key    text COLLATE "C" NOT NULL,
	display_name text NOT NULL,
	PRIMARY KEY (tenant, kind, key)
);

-- Deleted-user marks (groups.DeletedUser) by lower-cased id or e-mail.
CREATE TABLE deleted_users (
	tenant     text COLLATE "C" NOT NULL,
	key        text COLLATE "C" NOT NULL,
	id         text NOT NULL,
	email      text NOT NULL,
	deleted_at timestamptz,
	expires    timestamptz NOT NULL,
	PRIMARY KEY (tenant, key)
);
CREATE INDEX deleted_users_expires ON deleted_users (expires);

-- Webhook delivery records (webhooks.Record) by digest; pending is the
-- JSON of webhooks.Applied, NULL once the outcome is recorded.
CREATE TABLE deliveries (
	tenant  text COLLATE "C" NOT NULL,
	digest  bytea NOT NULL,
	expires timestamptz NOT NULL,
	pending jsonb,
	PRIMARY KEY (tenant, digest)
);
CREATE INDEX deliveries_expires ON deliveries (expires);

-- Owners records (ownersRecord) by group.
CREATE TABLE owners (
	tenant    text COLLATE "C" NOT NULL,
	project   text COLLATE "C" NOT NULL,
	group_key text COLLATE "C" NOT NULL,
	doc       jsonb NOT NULL,
	PRIMARY KEY (tenant, project, group_key)
);
