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
	limit          int
	cursor, prefix string
}

func (pf *pageFlags) bind(fs *flag.FlagSet, what string) {
	fs.IntVar(&pf.limit, "limit", 0, "at most this many "+what+" (1-1000; default the server's, 100)")
	fs.StringVar(&pf.cursor, "cursor", "", "the page after the one that printed this cursor")
	fs.StringVar(&pf.prefix, "prefix", "", "only "+what+" whose name starts with this")
}

func (pf *pageFlags) limitParam() *int32 {
	if pf.limit == 0 {
		return nil
	}
	return ptr(int32(pf.limit))
}

func groupsCmd() *node {
	return &node{name: "groups", summary: "A project's groups (the group part of <TENANT>:<PROJECT>:<group>) and their members.", subs: []*node{
		{name: "list", summary: "List the project's groups, from the gateway's mirror.", scope: scopeProject,
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				var pf pageFlags
				pf.bind(fs, "groups")
				return func(ctx context.Context, args []string) error {
					if err := positional(args, 0, 0, "no arguments"); err != nil {
						return err
					}
					api, err := c.api()
					if err != nil {
						return err
					}
					resp, err := api.ListGroupsWithResponse(ctx, c.tenant, c.project, &client.ListGroupsParams{
						LimitParam: pf.limitParam(), CursorParam: nonEmpty(pf.cursor), PrefixParam: nonEmpty(pf.prefix)})
					if err := c.check(resp, err); err != nil {
						return err
					}
					l := resp.JSON200
					defer c.more(l.NextCursor)
					return c.print(resp.Body, func(w io.Writer) {
						row(w, "NAME", "STATE", "MEMBERS", "DESCRIPTION", "FULL NAME", "SYNCED")
						for _, g := range l.Groups {
							row(w, g.Name, string(g.State), num(g.MemberCount), orDash(g.Description), g.FullName, tm(g.SyncedAt))
						}
					})
				}
			}},
		{name: "get", args: "GROUP", summary: "Show one group, with its ETag for 'groups update --if-match'.", scope: scopeProject,
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				return func(ctx context.Context, args []string) error {
					if err := positional(args, 1, 1, "GROUP"); err != nil {
						return err
					}
					api, err := c.api()
					if err != nil {
						return err
					}
					resp, err := api.GetGroupWithResponse(ctx, c.tenant, c.project, args[0])
					if err := c.check(resp, err); err != nil {
						return err
					}
					return c.print(resp.Body, func(w io.Writer) { groupTable(w, resp.JSON200) })
				}
			}},
		{name: "create", args: "GROUP", summary: "Create a group. It is answered at once with a queued operation; --wait waits for the outcome.", scope: scopeProject,
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				var wf waitFlags
				wf.bind(fs)
				desc := fs.String("description", "", "the group's description")
				return func(ctx context.Context, args []string) error {
					if err := positional(args, 1, 1, "GROUP"); err != nil {
						return err
					}
					if err := wf.check(); err != nil {
						return err
					}
					api, err := c.api()
					if err != nil {
						return err
					}
					resp, err := api.CreateGroupWithResponse(ctx, c.tenant, c.project,
						&client.CreateGroupParams{IdempotencyKeyParam: wf.key()},
						client.CreateGroupRequest{Name: args[0], Description: nonEmpty(*desc)})
					if err := c.check(resp, err); err != nil {
						return err
					}
					return c.accepted(ctx, api, resp.Body, firstOp(resp.JSON202, resp.JSON201, resp.JSON200), wf)
				}
			}},
		{name: "update", args: "GROUP", summary: "Change a group's description (an operation, like create).", scope: scopeProject,
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				var wf waitFlags
				wf.bind(fs)
				desc := fs.String("description", "", "the new description (required; may be empty only as --description=)")
				ifMatch := fs.String("if-match", "", "only if the group's ETag (from 'groups get') is still this; else exit 5 and nothing changes")
				return func(ctx context.Context, args []string) error {
					if err := positional(args, 1, 1, "GROUP"); err != nil {
						return err
					}
					set := false
					fs.Visit(func(f *flag.Flag) { set = set || f.Name == "description" })
					if !set {
						return usagef("--description is required")
					}
					if err := wf.check(); err != nil {
						return err
					}
					api, err := c.api()
					if err != nil {
						return err
					}
					resp, err := api.UpdateGroupWithResponse(ctx, c.tenant, c.project, args[0],
						&client.UpdateGroupParams{IdempotencyKeyParam: wf.key(), IfMatchParam: nonEmpty(*ifMatch)},
						client.UpdateGroupRequest{Description: *desc})
					if err := c.check(resp, err); err != nil {
						return err
					}
					return c.accepted(ctx, api, resp.Body, firstOp(resp.JSON202, resp.JSON200), wf)
				}
			}},
		{name: "delete", args: "GROUP", summary: "Delete a group (an operation, like create).", scope: scopeProject,
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				var wf waitFlags
				wf.bind(fs)
				return func(ctx context.Context, args []string) error {
					if err := positional(args, 1, 1, "GROUP"); err != nil {
						return err
					}
					if err := wf.check(); err != nil {
						return err
					}
					api, err := c.api()
					if err != nil {
						return err
					}
					resp, err := api.DeleteGroupWithResponse(ctx, c.tenant, c.project, args[0],
						&client.DeleteGroupParams{IdempotencyKeyParam: wf.key()})
					if err := c.check(resp, err); err != nil {
						return err
					}
					return c.accepted(ctx, api, resp.Body, firstOp(resp.JSON202, resp.JSON200), wf)
				}
			}},
		membersCmd(),
	}}
}

func membersCmd() *node {
	change := func(add bool) func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
		return func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
			var wf waitFlags
			wf.bind(fs)
			return func(ctx context.Context, args []string) error {
				if err := positional(args, 2, 101, "GROUP USER... (1 to 100 users)"); err != nil {
					return err
				}
				if err := wf.check(); err != nil {
					return err
				}
				api, err := c.api()
				if err != nil {
					return err
				}
				body := client.MembersRequest{Users: args[1:]}
				var (
					raw []byte
					op  *client.Operation
				)
				if add {
					resp, err := api.AddMembersWithResponse(ctx, c.tenant, c.project, args[0], &client.AddMembersParams{IdempotencyKeyParam: wf.key()}, body)
					if err := c.check(resp, err); err != nil {
						return err
					}
					raw, op = resp.Body, firstOp(resp.JSON202, resp.JSON200)
				} else {
					resp, err := api.RemoveMembersWithResponse(ctx, c.tenant, c.project, args[0], &client.RemoveMembersParams{IdempotencyKeyParam: wf.key()}, body)
					if err := c.check(resp, err); err != nil {
						return err
					}
					raw, op = resp.Body, firstOp(resp.JSON202, resp.JSON200)
				}
				return c.accepted(ctx, api, raw, op, wf)
			}
		}
	}
	return &node{name: "members", summary: "Members of a group: TechPass users, by login e-mail or object id.", subs: []*node{
		{name: "list", args: "GROUP", summary: "List a group's members, from the gateway's mirror.", scope: scopeProject,
			flags: func(fs *flag.FlagSet, c *conn) func(context.Context, []string) error {
				var pf pageFlags
				pf.bind(fs, "members")
				return func(ctx context.Context, args []string) error {
					if err := positional(args, 1, 1, "GROUP"); err != nil {
						return err
					}
					api, err := c.api()
					if err != nil {
						return err
					}
					resp, err := api.ListMembersWithResponse(ctx, c.tenant, c.project, args[0], &client.ListMembersParams{
						LimitParam: pf.limitParam(), CursorParam: nonEmpty(pf.cursor), PrefixParam: nonEmpty(pf.prefix)})
					if err := c.check(resp, err); err != nil {
						return err
					}
					l := resp.JSON200
					defer c.more(l.NextCursor)
					return c.print(resp.Body, func(w io.Writer) {
						row(w, "EMAIL", "NAME", "ID")
						for _, m := range l.Members {
							row(w, orDash(m.Email), str(m.DisplayName), m.Id)
						}
					})
				}
			}},
		{name: "add", args: "GROUP USER...", summary: "Add up to 100 users to a group in one operation.", scope: scopeProject, flags: change(true)},
		{name: "remove", args: "GROUP USER...", summary: "Remove up to 100 users from a group in one operation.", scope: scopeProject, flags: change(false)},
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
