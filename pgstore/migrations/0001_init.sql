-- Schema version 1: tenants, projects and keys; the audit log; leases and
-- pacing of the per-tenant dispatcher.
--
-- Text keys use the "C" collation: names and ids order byte-wise, as the
-- stores' contracts (and bbolt) do, whatever the database's locale.

-- Counters read by every replica: 'tenants' moves with every committed
-- change of tenants, projects and keys (tenants.Store Generation).
CREATE TABLE generations (
	name  text COLLATE "C" PRIMARY KEY,
	value bigint NOT NULL
);
INSERT INTO generations (name, value) VALUES ('tenants', 1);

CREATE TABLE tenants (
	name        text COLLATE "C" PRIMARY KEY,
	disabled    boolean NOT NULL,
	group_limit integer NOT NULL,
	interval_ns bigint NOT NULL,
	-- tenants.TechPass: URLs, ids and credentials (sealed or by reference).
	techpass    jsonb NOT NULL,
	created_at  timestamptz,
	updated_at  timestamptz
);

CREATE TABLE projects (
	tenant      text COLLATE "C" NOT NULL REFERENCES tenants (name),
	name        text COLLATE "C" NOT NULL,
	disabled    boolean NOT NULL,
	group_quota integer NOT NULL,
	-- tenants.IdentityProvider, or NULL.
	identity    jsonb,
	issuer      text COLLATE "C" GENERATED ALWAYS AS (identity ->> 'issuer') STORED,
	created_at  timestamptz,
	updated_at  timestamptz,
	PRIMARY KEY (tenant, name)
);
CREATE INDEX projects_issuer ON projects (issuer) WHERE issuer IS NOT NULL;

CREATE TABLE keys (
	id           text COLLATE "C" PRIMARY KEY,
	name         text NOT NULL,
	role         text NOT NULL,
	tenant       text COLLATE "C" NOT NULL,
	project      text COLLATE "C" NOT NULL,
	scopes       text[] NOT NULL,
	hash         bytea NOT NULL,
	created_by   text NOT NULL,
	created_at   timestamptz,
	expires_at   timestamptz,
	revoked_at   timestamptz,
	last_used_at timestamptz
);
CREATE INDEX keys_tenant ON keys (tenant, created_at, id);
CREATE INDEX keys_created ON keys (created_at, id);

-- The audit log. The id (audit.MakeID) sorts by time; the time is not
-- stored apart from it.
CREATE TABLE audit (
	id           text COLLATE "C" PRIMARY KEY,
	tenant       text COLLATE "C" NOT NULL,
	project      text NOT NULL,
	actor        text NOT NULL,
	role         text NOT NULL,
	action       text NOT NULL,
	target       text NOT NULL,
	outcome      text NOT NULL,
	status       integer NOT NULL,
	request_id   text NOT NULL,
	operation_id text NOT NULL,
	detail       text NOT NULL
);
CREATE INDEX audit_tenant ON audit (tenant, id) WHERE tenant <> '';

-- One row per tenant that ever had a dispatcher lease. Rows are never
-- deleted, so the epoch only grows: a released lease keeps its epoch with
-- an empty holder.
CREATE TABLE leases (
	tenant      text COLLATE "C" PRIMARY KEY,
	holder      text NOT NULL,
	epoch       bigint NOT NULL,
	expires     timestamptz NOT NULL,
	acquired_at timestamptz NOT NULL
);

-- The tenant's last upstream request, by the database's clock.
CREATE TABLE pacing (
	tenant     text COLLATE "C" PRIMARY KEY,
	epoch      bigint NOT NULL,
	last_start timestamptz,
	last_end   timestamptz,
	hold_until timestamptz
);

-- What TechPass's application events (credentials expiring, application
-- deleted) leave in /readyz, per tenant and kind, until they expire.
CREATE TABLE webhook_notices (
	tenant  text COLLATE "C" NOT NULL,
	kind    text COLLATE "C" NOT NULL,
	text    text NOT NULL,
	expires timestamptz NOT NULL,
	PRIMARY KEY (tenant, kind)
);

-- The replicas alive, by heartbeat (database clock), among which tenants'
-- leases are spread.
CREATE TABLE replicas (
	name    text COLLATE "C" PRIMARY KEY,
	expires timestamptz NOT NULL
);
