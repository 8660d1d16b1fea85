package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/groupgate/groupgate/client"
)

func root() *node {
	return &node{
		summary: "The command line for groupgate's API: a project's groups, members and operations, and for\n" +
			"tenant-admins and operators tenants, projects, keys and the audit log.",
		subs: []*node{groupsCmd(), operationsCmd(), queueCmd(), keysCmd(), tenantsCmd(), projectsCmd(), auditCmd()},
	}
}

// firstOp is the operation of whichever documented success answered.
func firstOp(ops ...*client.Operation) *client.Operation {
	for _, op := range ops {
		if op != nil {
			return op
		}
	}
	return nil
}

// pageFlags are the flags of every list that comes in pages.
type pageFlags struct {
	limit          *int32
	cursor, prefix string
}

func (pf *pageFlags) bind(fs *flag.FlagSet, what, prefixHelp string) {
	limitFlag(fs, &pf.limit, "at most this many "+what)
	fs.StringVar(&pf.cursor, "cursor", "", "the page after the one that printed this cursor")
	fs.StringVar(&pf.prefix, "prefix", "", prefixHelp)
}

// limitFlag registers --limit, checked here: the server's range is 1-1000.
func limitFlag(fs *flag.FlagSet, p **int32, usage string) {
	fs.Func("limit", usage+" (`n`: 1-1000; default the server's, 100)", func(s string) error {
		var n int32
		if _, err := fmt.Sscan(s, &n); err != nil || n < 1 || n > 1000 || fmt.Sprint(n) != s {
			return fmt.Errorf("want a number from 1 to 1000")
		}
		*p = &n
		return nil
	})
}

// oneOp registers the leaf run as a command that answers with an operation,
// with --wait, --timeout and --idempotency-key; send sends its request.
func oneOp(send func(ctx context.Context, c *conn, args []string, key *string) (client.Response, *client.Operation, error)) func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
	return func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
		var wf waitFlags
		wf.bind(fs)
		return func(ctx context.Context, args []string) error {
			resp, op, err := send(ctx, c, args, nonEmpty(wf.idempotencyKey))
			if err != nil {
				return err
			}
			return c.accepted(ctx, resp, op, wf)
		}
	}
}

func groupsCmd() *node {
	return &node{name: "groups", summary: "A project's groups (the group part of <TENANT>:<PROJECT>:<group>) and their members.", subs: []*node{
		{name: "list", summary: "List the project's groups, from the gateway's mirror.", scope: scopeProject,
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				var pf pageFlags
				pf.bind(fs, "groups", "only groups whose name starts with this")
				return func(ctx context.Context, _ []string) error {
					resp, err := c.api.ListGroupsWithResponse(ctx, c.tenant, c.project, &client.ListGroupsParams{
						LimitParam: pf.limit, CursorParam: nonEmpty(pf.cursor), PrefixParam: nonEmpty(pf.prefix)})
					if err != nil {
						return err
					}
					return show(c, resp, resp.JSON200, func(w io.Writer, l *client.GroupList) {
						row(w, "NAME", "STATE", "MEMBERS", "DESCRIPTION", "FULL NAME", "SYNCED")
						for _, g := range l.Groups {
							row(w, g.Name, string(g.State), num(g.MemberCount), orDash(g.Description), g.FullName, tm(g.SyncedAt))
						}
						c.more(l.NextCursor)
					})
				}
			}},
		{name: "get", args: "GROUP", min: 1, max: 1, summary: "Show one group, with its ETag for 'groups update --if-match'.", scope: scopeProject,
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				return func(ctx context.Context, args []string) error {
					resp, err := c.api.GetGroupWithResponse(ctx, c.tenant, c.project, args[0])
					if err != nil {
						return err
					}
					return show(c, resp, resp.JSON200, groupTable)
				}
			}},
		{name: "create", args: "GROUP", min: 1, max: 1, summary: "Create a group. It is answered at once with a queued operation; --wait waits for the outcome.", scope: scopeProject,
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				desc := fs.String("description", "", "the group's description")
				return oneOp(func(ctx context.Context, c *conn, args []string, key *string) (client.Response, *client.Operation, error) {
					resp, err := c.api.CreateGroupWithResponse(ctx, c.tenant, c.project, &client.CreateGroupParams{IdempotencyKeyParam: key},
						client.CreateGroupRequest{Name: args[0], Description: nonEmpty(*desc)})
					if err != nil {
						return nil, nil, err
					}
					return resp, firstOp(resp.JSON202, resp.JSON201, resp.JSON200), nil
				})(fs, c)
			}},
		{name: "update", args: "GROUP", min: 1, max: 1, summary: "Change a group's description (an operation, like create).", scope: scopeProject,
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				desc := fs.String("description", "", "the new description (required; may be empty only as --description=)")
				ifMatch := fs.String("if-match", "", "only if the group's ETag (from 'groups get') is still this; else exit 5 and nothing changes")
				return oneOp(func(ctx context.Context, c *conn, args []string, key *string) (client.Response, *client.Operation, error) {
					set := false
					fs.Visit(func(f *flag.Flag) { set = set || f.Name == "description" })
					if !set {
						return nil, nil, usagef("--description is required")
					}
					resp, err := c.api.UpdateGroupWithResponse(ctx, c.tenant, c.project, args[0],
						&client.UpdateGroupParams{IdempotencyKeyParam: key, IfMatchParam: nonEmpty(*ifMatch)},
						client.UpdateGroupRequest{Description: *desc})
					if err != nil {
						return nil, nil, err
					}
					return resp, firstOp(resp.JSON202, resp.JSON200), nil
				})(fs, c)
			}},
		{name: "delete", args: "GROUP", min: 1, max: 1, summary: "Delete a group (an operation, like create).", scope: scopeProject,
			flags: oneOp(func(ctx context.Context, c *conn, args []string, key *string) (client.Response, *client.Operation, error) {
				resp, err := c.api.DeleteGroupWithResponse(ctx, c.tenant, c.project, args[0], &client.DeleteGroupParams{IdempotencyKeyParam: key})
				if err != nil {
					return nil, nil, err
				}
				return resp, firstOp(resp.JSON202, resp.JSON200), nil
			})},
		membersCmd(),
	}}
}

func membersCmd() *node {
	change := func(add bool) func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
		return oneOp(func(ctx context.Context, c *conn, args []string, key *string) (client.Response, *client.Operation, error) {
			group, body := args[0], client.MembersRequest{Users: args[1:]}
			if add {
				r, err := c.api.AddMembersWithResponse(ctx, c.tenant, c.project, group, &client.AddMembersParams{IdempotencyKeyParam: key}, body)
				if err != nil {
					return nil, nil, err
				}
				return r, firstOp(r.JSON202, r.JSON200), nil
			}
			r, err := c.api.RemoveMembersWithResponse(ctx, c.tenant, c.project, group, &client.RemoveMembersParams{IdempotencyKeyParam: key}, body)
			if err != nil {
				return nil, nil, err
			}
			return r, firstOp(r.JSON202, r.JSON200), nil
		})
	}
	return &node{name: "members", summary: "Members of a group: TechPass users, by login e-mail or object id.", subs: []*node{
		{name: "list", args: "GROUP", min: 1, max: 1, summary: "List a group's members, from the gateway's mirror.", scope: scopeProject,
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				var pf pageFlags
				pf.bind(fs, "members", "only members whose login e-mail starts with this")
				return func(ctx context.Context, args []string) error {
					resp, err := c.api.ListMembersWithResponse(ctx, c.tenant, c.project, args[0], &client.ListMembersParams{
						LimitParam: pf.limit, CursorParam: nonEmpty(pf.cursor), PrefixParam: nonEmpty(pf.prefix)})
					if err != nil {
						return err
					}
					return show(c, resp, resp.JSON200, func(w io.Writer, l *client.MemberList) {
						row(w, "EMAIL", "NAME", "ID")
						for _, m := range l.Members {
							row(w, orDash(m.Email), str(m.DisplayName), m.Id)
						}
						c.more(l.NextCursor)
					})
				}
			}},
		{name: "add", args: "GROUP USER...", min: 2, max: 101, summary: "Add up to 100 users to a group in one operation.", scope: scopeProject, flags: change(true)},
		{name: "remove", args: "GROUP USER...", min: 2, max: 101, summary: "Remove up to 100 users from a group in one operation.", scope: scopeProject, flags: change(false)},
	}}
}
func groupTable(w io.Writer, g *client.Group) {
	row(w, "NAME", g.Name)
	row(w, "FULL NAME", g.FullName)
	row(w, "STATE", string(g.State))
	row(w, "DESCRIPTION", orDash(g.Description))
	row(w, "MEMBERS", num(g.MemberCount))
	row(w, "ETAG", str(g.Etag))
	row(w, "PENDING OPERATION", str(g.PendingOperationId))
	row(w, "CREATED", tm(&g.CreatedAt))
	row(w, "UPDATED", tm(&g.UpdatedAt))
	row(w, "SYNCED", tm(g.SyncedAt))
}

func operationTable(w io.Writer, op *client.Operation) {
	row(w, "ID", op.Id)
	row(w, "KIND", string(op.Kind))
	row(w, "STATE", string(op.State))
	row(w, "GROUP", op.FullName)
	if op.Position != nil {
		row(w, "POSITION", num(op.Position))
	}
	if op.EstimatedStartAt != nil {
		row(w, "ESTIMATED START", tm(op.EstimatedStartAt))
	}
	row(w, "ATTEMPTS", fmt.Sprint(op.Attempts))
	if op.LastError != nil {
		row(w, "LAST ERROR", str(op.LastError))
	}
	if op.NextAttemptAt != nil {
		row(w, "NEXT ATTEMPT", tm(op.NextAttemptAt))
	}
	if op.Error != nil {
		e := op.Error.Title
		if op.Error.Detail != nil {
			e += ": " + *op.Error.Detail
		}
		row(w, "ERROR", e)
	}
	if r := op.Result; r != nil && r.Members != nil {
		var added, removed []string
		for _, m := range r.Members.Added {
			added = append(added, orDash(m.Email))
		}
		for _, m := range r.Members.Removed {
			removed = append(removed, orDash(m.Email))
		}
		row(w, "ADDED", orDash(strings.Join(added, ", ")))
		row(w, "REMOVED", orDash(strings.Join(removed, ", ")))
		row(w, "UNCHANGED", orDash(strings.Join(r.Members.Unchanged, ", ")))
	}
	row(w, "CREATED", tm(&op.CreatedAt))
	row(w, "FINISHED", tm(op.FinishedAt))
}
