package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/groupgate/groupgate/client"
)

func operationsCmd() *node {
	return &node{name: "operations", summary: "Queued writes and their outcome.", subs: []*node{
		{name: "get", args: "ID", min: 1, max: 1, summary: "Show an operation: its state, queue position and estimated start, or its outcome.",
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				return func(ctx context.Context, args []string) error {
					resp, err := c.api.GetOperationWithResponse(ctx, args[0], nil)
					if err != nil {
						return err
					}
					return show(c, resp, resp.JSON200, operationTable)
				}
			}},
		{name: "wait", args: "ID", min: 1, max: 1, summary: "Wait until an operation finishes, showing its progress on stderr; exit 6 if it failed or was cancelled, 7 on --timeout.",
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				var timeout time.Duration
				timeoutFlag(fs, &timeout, "give up waiting after this `duration` (exit 7); the operation stays queued")
				return func(ctx context.Context, args []string) error {
					resp, err := c.api.GetOperationWithResponse(ctx, args[0], nil)
					if err != nil {
						return err
					}
					return c.accepted(ctx, resp, resp.JSON200, waitFlags{wait: true, timeout: timeout})
				}
			}},
		{name: "cancel", args: "ID", min: 1, max: 1, summary: "Cancel an operation not yet sent to TechPass (exit 5 if it already was).",
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				return func(ctx context.Context, args []string) error {
					resp, err := c.api.CancelOperationWithResponse(ctx, args[0])
					if err != nil {
						return err
					}
					return show(c, resp, resp.JSON200, operationTable)
				}
			}},
		{name: "retry", args: "ID", min: 1, max: 1, summary: "Queue a failed operation's work again, as a new operation.",
			flags: oneOp(func(ctx context.Context, c *conn, args []string, key *string) (client.Response, *client.Operation, error) {
				resp, err := c.api.RetryOperationWithResponse(ctx, args[0], &client.RetryOperationParams{IdempotencyKeyParam: key})
				if err != nil {
					return nil, nil, err
				}
				return resp, firstOp(resp.JSON202, resp.JSON201, resp.JSON200), nil
			})},
	}}
}

func queueCmd() *node {
	return &node{name: "queue", summary: "Show how much work of the project and its tenant waits for TechPass, and when a write sent now would start.", scope: scopeProject,
		flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
			return func(ctx context.Context, _ []string) error {
				resp, err := c.api.GetQueueWithResponse(ctx, c.tenant, c.project)
				if err != nil {
					return err
				}
				return show(c, resp, resp.JSON200, func(w io.Writer, q *client.QueueStatus) {
					row(w, "PROJECT PENDING", fmt.Sprintf("%d of at most %d", q.Project.Pending, q.Project.Max))
					row(w, "TENANT PENDING", fmt.Sprintf("%d of at most %d", q.Tenant.Pending, q.Tenant.Max))
					row(w, "PROJECTS WAITING", fmt.Sprint(q.ProjectsWaiting))
					row(w, "INTERVAL", fmt.Sprintf("%gs", q.IntervalSeconds))
					row(w, "NEXT WRITE STARTS", tm(&q.EstimatedStartAt))
				})
			}
		}}
}

func keysCmd() *node {
	return &node{name: "keys", summary: "API keys (tenant-admins: their tenant's; operators: all).", subs: []*node{
		{name: "issue", summary: "Issue a key. It is shown once; with --out it goes to a new file (mode 0600) instead of stdout.",
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				name := fs.String("name", "", "what the key is for (required)")
				role := fs.String("role", string(client.RoleProject), "project, tenant-admin or operator")
				tenant := fs.String("tenant", "", "the key's tenant (project and tenant-admin keys)")
				project := fs.String("project", "", "the key's project (project keys)")
				scopes := fs.String("scopes", "", "comma-separated scopes of a project key: groups:read,groups:write,members:read,members:write (default the server's)")
				expires := fs.String("expires", "", "expiry: an RFC 3339 time or a duration from now such as 2160h")
				out := fs.String("out", "", "write the key to this new file (mode 0600) rather than printing it; -o json then leaves out \"key\"")
				return func(ctx context.Context, _ []string) (err error) {
					if *name == "" {
						return usagef("--name is required")
					}
					in := client.KeyInput{Name: *name, Role: client.Role(*role), Tenant: nonEmpty(*tenant), Project: nonEmpty(*project)}
					if *scopes != "" {
						var ss []client.Scope
						for _, s := range strings.Split(*scopes, ",") {
							ss = append(ss, client.Scope(strings.TrimSpace(s)))
						}
						in.Scopes = &ss
					}
					if *expires != "" {
						t, err := timeArg(*expires, c.env.Now(), 1)
						if err != nil {
							return usagef("--expires: %w", err)
						}
						in.ExpiresAt = &t
					}
					// The file is made before the key, so that a key is never
					// issued with nowhere to go.
					var f *os.File
					if *out != "" {
						if f, err = os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
							return usagef("--out: %w", err)
						}
						defer func() {
							if cerr := f.Close(); err == nil && cerr != nil {
								err = cerr
							}
							if err != nil {
								_ = os.Remove(*out)
							}
						}()
					}
					resp, err := c.api.CreateKeyWithResponse(ctx, in)
					if err != nil {
						return err
					}
					k, body := resp.JSON201, resp.Body
					if k == nil {
						return show(c, resp, k, nil)
					}
					if f != nil {
						if _, err := f.WriteString(k.Key + "\n"); err != nil {
							return fmt.Errorf("key %s was issued but not saved (revoke it): %w", k.Id, err)
						}
						if body, err = withoutKey(body); err != nil {
							return err
						}
					}
					return c.print(body, func(w io.Writer) {
						if f == nil {
							row(w, "KEY", k.Key+"  (shown once: store it now)")
						} else {
							row(w, "KEY", "written to "+*out)
						}
						keyTable(w, &client.Key{Id: k.Id, Name: k.Name, Role: k.Role, Tenant: k.Tenant, Project: k.Project,
							Scopes: k.Scopes, State: client.KeyState(k.State), ExpiresAt: k.ExpiresAt, CreatedAt: k.CreatedAt})
					})
				}
			}},
		{name: "list", summary: "List keys' metadata (never their secrets); ROTATE marks keys due for rotation.",
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				tenant := fs.String("tenant", "", "only this tenant's keys")
				return func(ctx context.Context, _ []string) error {
					resp, err := c.api.ListKeysWithResponse(ctx, &client.ListKeysParams{Tenant: nonEmpty(*tenant)})
					if err != nil {
						return err
					}
					return show(c, resp, resp.JSON200, func(w io.Writer, l *client.KeyList) {
						row(w, "ID", "NAME", "ROLE", "TENANT", "PROJECT", "STATE", "EXPIRES", "LAST USED", "ROTATE")
						for _, k := range l.Keys {
							rot := "-"
							if k.RotationDue {
								rot = "due"
							}
							row(w, k.Id, k.Name, string(k.Role), str(k.Tenant), str(k.Project), string(k.State), tm(k.ExpiresAt), tm(k.LastUsedAt), rot)
						}
					})
				}
			}},
		{name: "get", args: "KEY-ID", min: 1, max: 1, summary: "Show one key's metadata (KEY-ID is the <keyid> of gk_<keyid>_<secret>).",
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				return func(ctx context.Context, args []string) error {
					resp, err := c.api.GetKeyWithResponse(ctx, args[0])
					if err != nil {
						return err
					}
					return show(c, resp, resp.JSON200, keyTable)
				}
			}},
		{name: "revoke", args: "KEY-ID", min: 1, max: 1, summary: "Revoke a key; it stops working with its next request (other replicas: within postgres.auth_cache_ttl).",
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				return func(ctx context.Context, args []string) error {
					resp, err := c.api.RevokeKeyWithResponse(ctx, args[0])
					if err != nil {
						return err
					}
					return show(c, resp, resp.JSON200, keyTable)
				}
			}},
	}}
}

func keyTable(w io.Writer, k *client.Key) {
	scopes := make([]string, len(k.Scopes))
	for i, s := range k.Scopes {
		scopes[i] = string(s)
	}
	row(w, "ID", k.Id)
	row(w, "NAME", k.Name)
	row(w, "ROLE", string(k.Role))
	row(w, "TENANT", str(k.Tenant))
	row(w, "PROJECT", str(k.Project))
	row(w, "SCOPES", orDash(strings.Join(scopes, ",")))
	row(w, "STATE", string(k.State))
	row(w, "EXPIRES", tm(k.ExpiresAt))
	row(w, "CREATED", tm(&k.CreatedAt))
	if k.RevokedAt != nil {
		row(w, "REVOKED", tm(k.RevokedAt))
	}
}

// withoutKey drops the "key" member from a KeyCreated body.
func withoutKey(body []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("decode the issued key: %w", err)
	}
	delete(m, "key")
	return json.Marshal(m)
}

func timeArg(s string, now time.Time, sign int) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 24h", s)
	}
	return now.Add(time.Duration(sign) * d).UTC().Truncate(time.Second), nil
}

func tenantsCmd() *node {
	return &node{name: "tenants", summary: "TechPass tenants (namespaces): operators onboard them.", subs: []*node{
		{name: "list", summary: "List tenants.",
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				return func(ctx context.Context, _ []string) error {
					resp, err := c.api.ListTenantsWithResponse(ctx)
					if err != nil {
						return err
					}
					return show(c, resp, resp.JSON200, func(w io.Writer, l *client.TenantList) {
						row(w, "NAME", "GROUP LIMIT", "INTERVAL", "UPSTREAM", "DISABLED", "CREATED")
						for _, t := range l.Tenants {
							row(w, t.Name, fmt.Sprint(t.GroupLimit), fmt.Sprintf("%gs", t.IntervalSeconds), string(t.Techpass.Upstream), fmt.Sprint(t.Disabled), tm(&t.CreatedAt))
						}
					})
				}
			}},
		{name: "create", args: "NAME", min: 1, max: 1, summary: "Onboard a tenant. Without --api-url it runs on the built-in TechPass simulator.\n" +
			"Its credentials are named by reference only (a file or a variable on the server), never as values on the command line.",
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				limit := fs.Int("group-limit", 0, "most groups the namespace may hold (default the server's, 50)")
				interval := fs.Float64("interval", 0, "seconds between two upstream requests (default the server's)")
				apiURL := fs.String("api-url", "", "TechPass API base URL")
				tokenURL := fs.String("token-url", "", "OAuth2 token URL (default derived from --directory-id)")
				directory := fs.String("directory-id", "", "Azure AD directory (tenant) id")
				clientID := fs.String("client-id", "", "OAuth2 client id")
				secretFile := fs.String("client-secret-file", "", "file on the server holding the client secret")
				secretEnv := fs.String("client-secret-env", "", "variable on the server holding the client secret")
				keyFile := fs.String("api-key-file", "", "file on the server holding the x-api-key")
				keyEnv := fs.String("api-key-env", "", "variable on the server holding the x-api-key")
				return func(ctx context.Context, args []string) error {
					in := client.TenantInput{Name: args[0]}
					if *limit != 0 {
						in.GroupLimit = ptr(int32(*limit))
					}
					if *interval != 0 {
						in.IntervalSeconds = interval
					}
					tp := client.TechPassInput{ApiUrl: nonEmpty(*apiURL), TokenUrl: nonEmpty(*tokenURL),
						DirectoryId: nonEmpty(*directory), ClientId: nonEmpty(*clientID),
						ClientSecret: credRef(*secretFile, *secretEnv), ApiKey: credRef(*keyFile, *keyEnv)}
					if tp != (client.TechPassInput{}) {
						in.Techpass = &tp
					}
					resp, err := c.api.CreateTenantWithResponse(ctx, in)
					if err != nil {
						return err
					}
					return show(c, resp, resp.JSON201, func(w io.Writer, t *client.Tenant) {
						row(w, "NAME", t.Name)
						row(w, "GROUP LIMIT", fmt.Sprint(t.GroupLimit))
						row(w, "INTERVAL", fmt.Sprintf("%gs", t.IntervalSeconds))
						row(w, "UPSTREAM", string(t.Techpass.Upstream))
						row(w, "CREATED", tm(&t.CreatedAt))
					})
				}
			}},
	}}
}

func credRef(file, env string) *client.CredentialInput {
	if file == "" && env == "" {
		return nil
	}
	return &client.CredentialInput{File: nonEmpty(file), Env: nonEmpty(env)}
}

func projectsCmd() *node {
	return &node{name: "projects", summary: "A tenant's projects (tenant-admins and operators).", subs: []*node{
		{name: "list", summary: "List the tenant's projects.", scope: scopeTenant,
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				return func(ctx context.Context, _ []string) error {
					resp, err := c.api.ListProjectsWithResponse(ctx, c.tenant)
					if err != nil {
						return err
					}
					return show(c, resp, resp.JSON200, func(w io.Writer, l *client.ProjectList) {
						row(w, "NAME", "TENANT", "GROUP QUOTA", "DISABLED", "IDENTITY PROVIDER", "CREATED")
						for _, p := range l.Projects {
							idp := "-"
							if p.Identity != nil {
								idp = p.Identity.Issuer
							}
							row(w, p.Name, p.Tenant, fmt.Sprint(p.GroupQuota), fmt.Sprint(p.Disabled), idp, tm(&p.CreatedAt))
						}
					})
				}
			}},
		{name: "create", args: "NAME", min: 1, max: 1, summary: "Create a project in the tenant.", scope: scopeTenant,
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				quota := fs.Int("group-quota", 0, "most groups the project may hold (default: no quota of its own)")
				return func(ctx context.Context, args []string) error {
					in := client.ProjectInput{Name: args[0]}
					if *quota != 0 {
						in.GroupQuota = ptr(int32(*quota))
					}
					resp, err := c.api.CreateProjectWithResponse(ctx, c.tenant, in)
					if err != nil {
						return err
					}
					return show(c, resp, resp.JSON201, func(w io.Writer, p *client.Project) {
						row(w, "NAME", p.Name)
						row(w, "TENANT", p.Tenant)
						row(w, "GROUP QUOTA", fmt.Sprint(p.GroupQuota))
						row(w, "CREATED", tm(&p.CreatedAt))
					})
				}
			}},
	}}
}

func auditCmd() *node {
	return &node{name: "audit", summary: "Read the audit log, newest first (operators: all; tenant-admins: their tenant).",
		flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
			var p client.ListAuditParams
			var tenant, project, actor, action, since, until, cursor string
			fs.StringVar(&tenant, "tenant", "", "only this tenant")
			fs.StringVar(&project, "project", "", "only this project")
			fs.StringVar(&actor, "actor", "", "only this actor, e.g. key:0123abcd")
			fs.StringVar(&action, "action", "", "only this action, e.g. group.create")
			fs.StringVar(&since, "since", "", "only entries at or after this: an RFC 3339 time or a duration ago such as 1h")
			fs.StringVar(&until, "until", "", "only entries before this: an RFC 3339 time or a duration ago")
			fs.StringVar(&cursor, "cursor", "", "the page after the one that printed this cursor")
			var limit *int32
			limitFlag(fs, &limit, "entries per page")
			return func(ctx context.Context, _ []string) error {
				p.Tenant, p.Project, p.Actor, p.Action, p.Cursor = nonEmpty(tenant), nonEmpty(project), nonEmpty(actor), nonEmpty(action), nonEmpty(cursor)
				for _, tf := range []struct {
					flag, val string
					dst       **time.Time
				}{{"--since", since, &p.Since}, {"--until", until, &p.Until}} {
					if tf.val == "" {
						continue
					}
					t, err := timeArg(tf.val, c.env.Now(), -1)
					if err != nil {
						return usagef("%s: %w", tf.flag, err)
					}
					*tf.dst = &t
				}
				if limit != nil {
					p.Limit = ptr(int(*limit))
				}
				resp, err := c.api.ListAuditWithResponse(ctx, &p)
				if err != nil {
					return err
				}
				return show(c, resp, resp.JSON200, func(w io.Writer, page *client.AuditPage) {
					row(w, "TIME", "ACTOR", "ROLE", "ACTION", "TARGET", "OUTCOME", "STATUS", "OPERATION")
					for _, e := range page.Entries {
						status := "-"
						if e.Status != nil {
							status = fmt.Sprint(*e.Status)
						}
						row(w, tm(&e.Time), e.Actor, e.Role, e.Action, str(e.Target), e.Outcome, status, str(e.OperationId))
					}
					c.more(page.Next)
				})
			}
		}}
}
