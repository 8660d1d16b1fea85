-- How many groups each project holds, kept with its GroupsVersion by the
-- writes that store or remove a group (putGroupSQL, deleteGroupSQL), so
-- that the limit and quota checks of a create read one row instead of
-- counting the groups.
ALTER TABLE group_versions ADD COLUMN n bigint NOT NULL DEFAULT 0;
INSERT INTO group_versions (tenant, project, version, n)
	SELECT tenant, project, 1, count(*) FROM groups GROUP BY tenant, project
	ON CONFLICT (tenant, project) DO UPDATE SET n = EXCLUDED.n;
