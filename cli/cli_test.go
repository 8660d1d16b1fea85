package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/cli"
	"github.com/groupgate/groupgate/client"
	"github.com/groupgate/groupgate/config"
)

// TestHelpEverywhere walks the command tree as a user would, from the
// Commands list of each --help, and checks every command answers --help
// and -h with its usage and the exit codes (exit 0, stdout), and that a
// command group without its subcommand is a usage error (exit 2, stderr).
func TestHelpEverywhere(t *testing.T) {
	g := &gateway{url: "http://127.0.0.1:1"} // nothing is sent
	seen := 0
	var walk func(path []string)
	walk = func(path []string) {
		for _, h := range []string{"--help", "-h"} {
			r := g.run(t, nil, append(slices.Clone(path), h)...)
			want(t, r, cli.ExitOK, append(path, h)...)
			usage := "Usage: " + strings.Join(append([]string{"groupgate"}, path...), " ")
			if !strings.HasPrefix(r.stdout, usage) || !strings.Contains(r.stdout, "Exit status:") || !strings.Contains(r.stdout, "7  timed out") || r.stderr != "" {
				t.Fatalf("%q: want %q, the exit codes on stdout, nothing on stderr; got %s", path, usage, r)
			}
		}
		seen++
		r := g.run(t, nil, append(slices.Clone(path), "--help")...)
		_, list, isGroup := strings.Cut(r.stdout, "\nCommands:\n")
		if !isGroup {
			if !strings.Contains(r.stdout, "Flags:\n") || !strings.Contains(r.stdout, "-url") || !strings.Contains(r.stdout, "-key-file") {
				t.Errorf("%q: a command's help lists its flags: %s", path, r.stdout)
			}
			return
		}
		if len(path) > 0 {
			r := g.run(t, nil, path...)
			want(t, r, cli.ExitUsage, path...)
			if r.stdout != "" || !strings.Contains(r.stderr, "Usage:") {
				t.Errorf("%q without a subcommand: usage on stderr only: %s", path, r)
			}
		}
		list, _, _ = strings.Cut(list, "\n\n")
		for _, line := range strings.Split(list, "\n") {
			walk(append(slices.Clone(path), strings.Fields(line)[0]))
		}
	}
	walk(nil)
	// groupgate, 7 commands and groups, operations, keys, tenants,
	// projects and members' subcommands.
	if seen != 1+7+6+4+4+2+2+3 {
		t.Errorf("walked %d commands, want 29", seen)
	}
	for _, args := range [][]string{{"help"}, {"help", "groups", "create"}} {
		r := g.run(t, nil, args...)
		want(t, r, cli.ExitOK, args...)
		if !strings.HasPrefix(r.stdout, "Usage: groupgate") {
			t.Errorf("%q: %s", args, r)
		}
	}
}

// TestUsageErrors: mistakes on the command line exit 2 before anything is
// sent, and say why.
func TestUsageErrors(t *testing.T) {
	g := &gateway{url: "http://127.0.0.1:1"} // a request would fail with exit 1
	env := map[string]string{"GROUPGATE_KEY": "gk_0123456789abcdef0123_secretsecret", "GROUPGATE_TENANT": "SHIP", "GROUPGATE_PROJECT": "MOH"}
	cases := []struct {
		args []string
		vars map[string]string
		msg  string
	}{
		{[]string{"nonsense"}, env, `unknown command "nonsense"`},
		{[]string{"groups", "frobnicate"}, env, `unknown command "frobnicate"`},
		{[]string{"groups", "list", "--nope"}, env, "flag provided but not defined: -nope"},
		{[]string{"groups", "create"}, env, "want GROUP, got 0 argument(s)"},
		{[]string{"groups", "create", "a", "b"}, env, "want GROUP, got 2 argument(s)"},
		{[]string{"groups", "members", "add", "billing"}, env, "want GROUP USER..."},
		{[]string{"groups", "list", "-o", "yaml"}, env, `-o "yaml": want table or json`},
		{[]string{"groups", "list"}, map[string]string{"GROUPGATE_TENANT": "SHIP", "GROUPGATE_PROJECT": "MOH"}, "no credential: set GROUPGATE_KEY or use --key-file"},
		{[]string{"groups", "list"}, map[string]string{"GROUPGATE_KEY": env["GROUPGATE_KEY"], "GROUPGATE_PROJECT": "MOH"}, "a tenant is needed"},
		{[]string{"groups", "list", "--tenant", "SHIP"}, map[string]string{"GROUPGATE_KEY": env["GROUPGATE_KEY"]}, "a project is needed"},
		{[]string{"groups", "list", "--url", "ftp://x"}, env, `--url (or $GROUPGATE_URL): want http(s)://host[:port]`},
		{[]string{"groups", "update", "billing"}, env, "--description is required"},
		{[]string{"keys", "issue", "--role", "project"}, env, "--name is required"},
		{[]string{"keys", "issue", "--name", "x", "--expires", "soon"}, env, `--expires: "soon" is neither`},
		{[]string{"audit", "--since", "yesterday"}, env, `--since: "yesterday" is neither`},
		{[]string{"operations", "wait", "op_x", "--timeout", "0s"}, env, `invalid value "0s" for flag -timeout: want a positive duration`},
		{[]string{"groups", "create", "x", "--wait", "--timeout", "-1s"}, env, `invalid value "-1s" for flag -timeout`},
		{[]string{"operations", "wait", ""}, env, "argument 1 is empty"},
		{[]string{"groups", "members", "add", "billing", " "}, env, "argument 2 is empty"},
		{[]string{"groups", "list", "--limit", "0"}, env, `invalid value "0" for flag -limit: want a number from 1 to 1000`},
		{[]string{"groups", "list", "--limit", "1001"}, env, `invalid value "1001" for flag -limit`},
		{[]string{"groups", "members", "list", "x", "--limit", "4294967297"}, env, `invalid value "4294967297" for flag -limit`},
		{[]string{"audit", "--limit", "-5"}, env, `invalid value "-5" for flag -limit`},
		{[]string{"groups", "list", "--url", "http://192.0.2.1"}, env, "refusing to send the credential to another machine without TLS"},
	}
	for _, tc := range cases {
		r := g.run(t, tc.vars, tc.args...)
		want(t, r, cli.ExitUsage, tc.args...)
		if !strings.Contains(r.stderr, tc.msg) || r.stdout != "" {
			t.Errorf("%q: want %q on stderr and nothing on stdout: %s", tc.args, tc.msg, r)
		}
	}
	// A server that cannot be reached is exit 1, not a usage error.
	r := g.run(t, env, "groups", "list")
	want(t, r, cli.ExitError, "groups", "list")
	if !strings.Contains(r.stderr, "request to 127.0.0.1:1 failed") {
		t.Errorf("unreachable server: %s", r)
	}
}

// TestKeyIsNeverAFlag: a credential given as a flag value is refused before
// anything else, and its value is not echoed.
func TestKeyIsNeverAFlag(t *testing.T) {
	const secret = "gk_0123456789abcdef0123_flagvaluesecret"
	g := &gateway{url: "http://127.0.0.1:1", secrets: []string{secret}}
	for _, args := range [][]string{
		{"groups", "list", "--key", secret},
		{"groups", "list", "--key=" + secret},
		{"--key", secret, "groups", "list"},
		{"keys", "list", "-token", secret},
		{"audit", "--api-key=" + secret},
		{"groups", "members", "add", "billing", "u@example.gov.sg", "--bearer", secret},
	} {
		r := g.run(t, nil, args...)
		want(t, r, cli.ExitUsage, args...)
		if !strings.Contains(r.stderr, "never taken as a flag value") || !strings.Contains(r.stderr, "GROUPGATE_KEY") {
			t.Errorf("%q: %s", args, r)
		}
	}
	// After "--" a word is an argument, not a flag; so is a flag's value.
	vars := map[string]string{"GROUPGATE_KEY": secret, "GROUPGATE_TENANT": "SHIP", "GROUPGATE_PROJECT": "MOH"}
	want(t, g.run(t, vars, "groups", "members", "add", "billing", "--", "--key"), cli.ExitError, "members add -- --key")
	want(t, g.run(t, vars, "groups", "create", "x", "--description", "--token"), cli.ExitError, "--description --token")

	// A key given where a file or a URL belongs is not echoed either.
	for _, tc := range []struct {
		args []string
		vars map[string]string
		msg  string
	}{
		{[]string{"groups", "list", "--key-file", secret}, vars, "--key-file: the key file: no such file or directory"},
		{[]string{"groups", "list", "--key-file=" + secret}, vars, "--key-file: the key file: no such file or directory"},
		{[]string{"groups", "list"}, map[string]string{"GROUPGATE_KEY_FILE": secret, "GROUPGATE_TENANT": "SHIP", "GROUPGATE_PROJECT": "MOH"}, "$GROUPGATE_KEY_FILE: the key file: no such file or directory"},
		{[]string{"groups", "list", "--url", secret}, vars, "--url (or $GROUPGATE_URL): want http(s)://host[:port]"},
		{[]string{"groups", "list"}, map[string]string{"GROUPGATE_URL": secret, "GROUPGATE_KEY": secret, "GROUPGATE_TENANT": "SHIP", "GROUPGATE_PROJECT": "MOH"}, "want http(s)://host[:port]"},
	} {
		r := g.run(t, tc.vars, tc.args...)
		want(t, r, cli.ExitUsage, tc.args...)
		if !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%q: want %q: %s", tc.args, tc.msg, r)
		}
	}
}

// TestKeyFile: the credential file must be private, like an ssh key, and
// wins over GROUPGATE_KEY.
func TestKeyFile(t *testing.T) {
	g := startGateway(t, 20*time.Millisecond)
	dir := t.TempDir()
	file := filepath.Join(dir, "key")
	writeFile(t, file, g.projectKey+"\n", 0o644)
	vars := map[string]string{"GROUPGATE_TENANT": "SHIP", "GROUPGATE_PROJECT": "MOH"}

	r := g.run(t, vars, "groups", "list", "--key-file", file)
	want(t, r, cli.ExitUsage, "--key-file 0644")
	if !strings.Contains(r.stderr, "may be read by others (mode 0644)") || !strings.Contains(r.stderr, "chmod 600") {
		t.Errorf("group/world-readable key file: %s", r)
	}
	if err := os.Chmod(file, 0o640); err != nil {
		t.Fatal(err)
	}
	want(t, g.run(t, vars, "groups", "list", "--key-file", file), cli.ExitUsage, "--key-file 0640")

	if err := os.Chmod(file, 0o600); err != nil {
		t.Fatal(err)
	}
	r = g.run(t, vars, "groups", "list", "--key-file", file)
	want(t, r, cli.ExitOK, "--key-file 0600")
	if !strings.HasPrefix(r.stdout, "NAME") {
		t.Errorf("list: %s", r)
	}
	// The file wins over the variable; GROUPGATE_KEY_FILE names it too.
	vars["GROUPGATE_KEY"] = "gk_0123456789abcdef0123_wrongwrongwrong"
	want(t, g.run(t, vars, "groups", "list"), cli.ExitAuth, "wrong GROUPGATE_KEY")
	want(t, g.run(t, vars, "groups", "list", "--key-file", file), cli.ExitOK, "--key-file over GROUPGATE_KEY")
	vars["GROUPGATE_KEY_FILE"] = file
	want(t, g.run(t, vars, "groups", "list"), cli.ExitOK, "GROUPGATE_KEY_FILE")

	for name, content := range map[string]string{"empty": "\n", "two words": g.projectKey + " x\n"} {
		bad := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		writeFile(t, bad, content, 0o600)
		r := g.run(t, vars, "groups", "list", "--key-file", bad)
		want(t, r, cli.ExitUsage, name+" key file")
	}
	want(t, g.run(t, vars, "groups", "list", "--key-file", filepath.Join(dir, "missing")), cli.ExitUsage, "missing key file")
}

// TestProjectWorkflow drives a project team's day through the command line
// against the real server: groups, members, operations, the queue, and
// what each failure exits with.
func TestProjectWorkflow(t *testing.T) {
	g := startGateway(t, 20*time.Millisecond)
	p := g.project()

	r := g.run(t, p, "groups", "create", "billing", "--description", "Billing team", "--wait")
	want(t, r, cli.ExitOK, "groups create billing --wait")
	for _, s := range []string{"KIND", "group.create", "STATE", "succeeded", "SHIP:MOH:billing"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("create --wait: want %q in the table: %s", s, r)
		}
	}
	// Without --wait: the queued operation, at once; then operations wait.
	r = g.run(t, p, "groups", "create", "payroll", "-o", "json")
	want(t, r, cli.ExitOK, "groups create payroll")
	var op client.Operation
	decode(t, r, &op)
	if op.Kind != client.GroupCreate || op.FullName != "SHIP:MOH:payroll" || op.Id == "" {
		t.Fatalf("create: %+v", op)
	}
	r = g.run(t, p, "operations", "wait", op.Id, "-o", "json")
	want(t, r, cli.ExitOK, "operations wait")
	decode(t, r, &op)
	if op.State != client.Succeeded {
		t.Errorf("wait: %+v", op)
	}
	r = g.run(t, p, "operations", "get", op.Id)
	want(t, r, cli.ExitOK, "operations get")
	if !regexp.MustCompile(`(?m)^STATE\s+succeeded$`).MatchString(r.stdout) {
		t.Errorf("operations get: %s", r)
	}

	// A name taken: 409 is exit 5, with the problem on stderr.
	r = g.run(t, p, "groups", "create", "BILLING")
	want(t, r, cli.ExitConflict, "create a taken name")
	if !strings.Contains(r.stderr, "(409)") || r.stdout != "" {
		t.Errorf("conflict: %s", r)
	}
	// A bad name: 422 is exit 1, naming the field.
	r = g.runBadInput(t, p, "groups", "create", "no spaces")
	want(t, r, cli.ExitError, "create a bad name")
	if !strings.Contains(r.stderr, "(422)") || !strings.Contains(r.stderr, "name") {
		t.Errorf("invalid: %s", r)
	}

	// Lists: an aligned table, or the API's JSON.
	r = g.run(t, p, "groups", "list")
	want(t, r, cli.ExitOK, "groups list")
	if !regexp.MustCompile(`(?m)^NAME\s+STATE\s+MEMBERS\s+DESCRIPTION`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^billing\s+active\s+0\s+Billing team\s+SHIP:MOH:billing`).MatchString(r.stdout) {
		t.Errorf("groups list table: %s", r)
	}
	r = g.run(t, p, "groups", "list", "-o", "json", "--limit", "1")
	want(t, r, cli.ExitOK, "groups list -o json")
	var gl client.GroupList
	decode(t, r, &gl)
	if len(gl.Groups) != 1 || gl.Groups[0].Name != "billing" || gl.NextCursor == nil {
		t.Fatalf("first page: %+v", gl)
	}
	r = g.run(t, p, "groups", "list", "--cursor", *gl.NextCursor)
	want(t, r, cli.ExitOK, "groups list --cursor")
	if !strings.Contains(r.stdout, "payroll") || strings.Contains(r.stdout, "billing") {
		t.Errorf("second page: %s", r)
	}
	r = g.run(t, p, "groups", "list", "--limit", "1")
	if !strings.Contains(r.stderr, "--cursor "+*gl.NextCursor) {
		t.Errorf("a table says how to get the next page: %s", r)
	}

	// Members: one operation for many users; an unknown user fails it (6).
	r = g.run(t, p, "groups", "members", "add", "billing", "user001@example.gov.sg", "user002@example.gov.sg", "user003@example.gov.sg", "--wait", "-o", "json")
	want(t, r, cli.ExitOK, "members add --wait")
	decode(t, r, &op)
	if op.State != client.Succeeded || op.Result == nil || op.Result.Members == nil || len(op.Result.Members.Added) != 3 {
		t.Errorf("members add: %s", r.stdout)
	}
	r = g.run(t, p, "groups", "members", "remove", "billing", "user002@example.gov.sg", "--wait")
	want(t, r, cli.ExitOK, "members remove --wait")
	if !regexp.MustCompile(`(?m)^REMOVED\s+user002@example.gov.sg$`).MatchString(r.stdout) {
		t.Errorf("members remove: %s", r)
	}
	r = g.run(t, p, "groups", "members", "list", "billing", "-o", "json")
	want(t, r, cli.ExitOK, "members list")
	var ml client.MemberList
	decode(t, r, &ml)
	if len(ml.Members) != 2 || ml.Members[0].Email != "user001@example.gov.sg" || ml.Members[1].Email != "user003@example.gov.sg" {
		t.Errorf("members: %+v", ml.Members)
	}
	r = g.run(t, p, "groups", "members", "list", "billing", "--limit", "1", "-o", "json")
	want(t, r, cli.ExitOK, "members list --limit 1")
	decode(t, r, &ml)
	if len(ml.Members) != 1 || ml.Members[0].Email != "user001@example.gov.sg" || ml.NextCursor == nil {
		t.Fatalf("members, first page: %+v", ml)
	}
	r = g.run(t, p, "groups", "members", "list", "billing", "--limit", "1", "--cursor", *ml.NextCursor)
	want(t, r, cli.ExitOK, "members list --cursor")
	if !strings.Contains(r.stdout, "user003@example.gov.sg") || strings.Contains(r.stdout, "user001") {
		t.Errorf("members, second page: %s", r)
	}
	r = g.run(t, p, "groups", "members", "list", "billing", "--prefix", "user003")
	if !regexp.MustCompile(`(?m)^EMAIL\s+NAME\s+ID\n^user003@example.gov.sg\s+User 003\s+\S+\n$`).MatchString(r.stdout) {
		t.Errorf("members list --prefix: %s", r)
	}
	r = g.run(t, p, "groups", "members", "add", "billing", "nobody@example.gov.sg", "--wait")
	want(t, r, cli.ExitOpFailed, "add an unknown user --wait")
	if !strings.Contains(r.stderr, "failed") || !strings.Contains(r.stderr, "nobody@example.gov.sg") || !regexp.MustCompile(`(?m)^STATE\s+failed$`).MatchString(r.stdout) {
		t.Errorf("failed operation: %s", r)
	}

	// The same --idempotency-key twice: the same operation, not another.
	// Without --wait a failure already known is no exit status of its own.
	add := []string{"groups", "members", "add", "billing", "nobody@example.gov.sg", "--idempotency-key", "add-nobody-1", "-o", "json"}
	r = g.run(t, p, append(add, "--wait")...)
	want(t, r, cli.ExitOpFailed, "add with an idempotency key")
	var failed, again client.Operation
	decode(t, r, &failed)
	r = g.run(t, p, add...)
	want(t, r, cli.ExitOK, "the same idempotency key again, without --wait")
	decode(t, r, &again)
	if again.Id != failed.Id || again.State != client.Failed {
		t.Errorf("idempotent replay: %+v, first %+v", again, failed)
	}
	// A failed operation is retried as a new one, which fails the same way.
	r = g.run(t, p, "operations", "retry", failed.Id, "--wait", "-o", "json")
	want(t, r, cli.ExitOpFailed, "retry --wait")
	var retried client.Operation
	decode(t, r, &retried)
	if retried.Id == failed.Id || retried.State != client.Failed || retried.Kind != client.GroupMembers {
		t.Errorf("retried %+v of %+v", retried, failed)
	}

	// "--" as a flag's value is that value, not the end of the flags.
	r = g.run(t, p, "groups", "create", "--description", "--", "dashes", "--wait")
	want(t, r, cli.ExitOK, "--description --")
	r = g.run(t, p, "groups", "get", "dashes")
	if !regexp.MustCompile(`(?m)^DESCRIPTION\s+--$`).MatchString(r.stdout) {
		t.Errorf("description --: %s", r)
	}

	// The queue.
	r = g.run(t, p, "queue", "-o", "json")
	want(t, r, cli.ExitOK, "queue")
	var q client.QueueStatus
	decode(t, r, &q)
	if q.Project.Max != 1000 || q.Tenant.Max != 10000 || q.IntervalSeconds <= 0 {
		t.Errorf("queue: %+v", q)
	}
	r = g.run(t, p, "queue")
	if !regexp.MustCompile(`(?m)^PROJECT PENDING\s+0 of at most 1000$`).MatchString(r.stdout) {
		t.Errorf("queue table: %s", r)
	}

	// Refusals: another project's groups (403) and a wrong key (401) are 4;
	// a missing group or operation 3.
	want(t, g.run(t, p, "groups", "list", "--project", "MOE"), cli.ExitAuth, "another project")
	bad := g.project()
	bad["GROUPGATE_KEY"] = "gk_0123456789abcdef0123_wrongwrongwrong"
	r = g.run(t, bad, "groups", "list")
	want(t, r, cli.ExitAuth, "wrong key")
	if !strings.Contains(r.stderr, "(401)") {
		t.Errorf("401: %s", r)
	}
	want(t, g.run(t, p, "groups", "get", "nothing"), cli.ExitNotFound, "get a missing group")
	want(t, g.run(t, p, "operations", "get", "op_aaaaaaaaaaaaaaaaaaaaaaaaaa"), cli.ExitNotFound, "get a missing operation")

	// Update with If-Match: a stale ETag is 412, exit 5, and changes nothing.
	r = g.run(t, p, "groups", "get", "billing", "-o", "json")
	var grp client.Group
	decode(t, r, &grp)
	r = g.run(t, p, "groups", "update", "billing", "--description", "Billing and refunds", "--if-match", *grp.Etag, "--wait")
	want(t, r, cli.ExitOK, "update --if-match")
	want(t, g.run(t, p, "groups", "update", "billing", "--description", "stale", "--if-match", *grp.Etag), cli.ExitConflict, "update with a stale ETag")
	r = g.run(t, p, "groups", "get", "billing")
	if !regexp.MustCompile(`(?m)^DESCRIPTION\s+Billing and refunds$`).MatchString(r.stdout) {
		t.Errorf("after update: %s", r)
	}

	// Delete, then the group is gone.
	want(t, g.run(t, p, "groups", "delete", "payroll", "--wait"), cli.ExitOK, "delete --wait")
	want(t, g.run(t, p, "groups", "get", "payroll"), cli.ExitNotFound, "get a deleted group")
}

// TestWaitCancelRetry uses a slow upstream (5 s between requests) so that
// operations stay queued: cancel, the progress line, the wait timeout and
// Ctrl-C. Each of them is done well within the first 5 s.
func TestWaitCancelRetry(t *testing.T) {
	g := startGateway(t, 5*time.Second)
	p := g.project()
	create := func(name string) client.Operation {
		t.Helper()
		r := g.run(t, p, "groups", "create", name, "-o", "json")
		want(t, r, cli.ExitOK, "create "+name)
		var op client.Operation
		decode(t, r, &op)
		return op
	}
	first, second, third := create("first"), create("second"), create("third")

	// The second cannot have started: cancel it (twice is fine); waiting for
	// it then reports the cancellation with exit 6.
	r := g.run(t, p, "operations", "cancel", second.Id)
	want(t, r, cli.ExitOK, "cancel a queued operation")
	if !regexp.MustCompile(`(?m)^STATE\s+cancelled$`).MatchString(r.stdout) {
		t.Errorf("cancel: %s", r)
	}
	want(t, g.run(t, p, "operations", "cancel", second.Id), cli.ExitOK, "cancel again")
	r = g.run(t, p, "operations", "wait", second.Id)
	want(t, r, cli.ExitOpFailed, "wait for a cancelled operation")
	if !strings.Contains(r.stderr, "was cancelled") {
		t.Errorf("wait cancelled: %s", r)
	}

	// A short --timeout: exit 7, the operation goes on. Plain progress
	// lines when stderr is not a terminal.
	r = g.run(t, p, "operations", "wait", third.Id, "--timeout", "300ms")
	want(t, r, cli.ExitTimeout, "wait --timeout")
	if !strings.Contains(r.stderr, third.Id+" group.create SHIP:MOH:third: queued, position") || !strings.Contains(r.stderr, "still queued after 300ms") || strings.Contains(r.stderr, "\r") {
		t.Errorf("timeout: %s", r)
	}

	// Ctrl-C while waiting: exit 130, and how to go on waiting.
	env := map[string]string{"GROUPGATE_URL": g.url}
	for k, v := range p {
		env[k] = v
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(300*time.Millisecond, cancel)
	r = g.runCtx(t, ctx, cli.Env{Getenv: func(k string) string { return env[k] }}, "operations", "wait", third.Id)
	want(t, r, cli.ExitInterrupted, "Ctrl-C")
	if !strings.Contains(r.stderr, "interrupted; operation "+third.Id+" goes on: wait again with 'groupgate operations wait "+third.Id+"'") {
		t.Errorf("Ctrl-C: %s", r)
	}

	// On a terminal the progress line is redrawn in place, then cleared.
	r = g.runEnv(t, cli.Env{Getenv: func(k string) string { return env[k] }, Interactive: func() bool { return true }},
		"operations", "wait", third.Id, "--timeout", "1m")
	want(t, r, cli.ExitOK, "wait on a terminal")
	if !strings.HasPrefix(r.stderr, "\r\x1b[K"+third.Id) || !strings.HasSuffix(r.stderr, "\r\x1b[K") || strings.Contains(r.stderr, "\n") {
		t.Errorf("terminal progress: %q", r.stderr)
	}
	if !regexp.MustCompile(`(?m)^STATE\s+succeeded$`).MatchString(r.stdout) {
		t.Errorf("after waiting: %s", r)
	}

	// The first has run: it cannot be cancelled (409, exit 5), nor retried
	// (only failed operations are).
	want(t, g.run(t, p, "operations", "wait", first.Id), cli.ExitOK, "wait first")
	want(t, g.run(t, p, "operations", "cancel", first.Id), cli.ExitConflict, "cancel a finished operation")
	want(t, g.run(t, p, "operations", "retry", first.Id), cli.ExitConflict, "retry a succeeded operation")
}

// TestWaitOutlastsRateLimit: a 429 while polling is waited out, not fatal.
// The burst of 3 is spent by two creates and the first look at the
// operation, so the first poll is refused.
func TestWaitOutlastsRateLimit(t *testing.T) {
	g := startGateway(t, 2*time.Second, func(c *config.Config) {
		c.RateLimit = config.RateLimitConfig{PerSecond: 0.5, Burst: 3}
	})
	p := g.project()
	want(t, g.run(t, p, "groups", "create", "first"), cli.ExitOK, "create first")
	r := g.run(t, p, "groups", "create", "second", "-o", "json")
	want(t, r, cli.ExitOK, "create second")
	var op client.Operation
	decode(t, r, &op)
	r = g.run(t, p, "operations", "wait", op.Id, "--timeout", "1m")
	want(t, r, cli.ExitOK, "wait through 429s")
	if !strings.Contains(r.stderr, op.Id+": the server is busy (429); asking again in") || !regexp.MustCompile(`(?m)^STATE\s+succeeded$`).MatchString(r.stdout) {
		t.Errorf("wait: %s", r)
	}
}

// TestAdminWorkflow: an operator onboards a tenant with a project and keys,
// the issued project key works, a revoked one stops working, and the audit
// log shows it all.
func TestAdminWorkflow(t *testing.T) {
	g := startGateway(t, 20*time.Millisecond)
	dir := t.TempDir()
	opFile := filepath.Join(dir, "operator.key")
	writeFile(t, opFile, g.opKey+"\n", 0o600)
	op := map[string]string{"GROUPGATE_KEY_FILE": opFile}

	r := g.run(t, op, "tenants", "create", "ACME", "--group-limit", "20", "-o", "json")
	want(t, r, cli.ExitOK, "tenants create")
	var tenant client.Tenant
	decode(t, r, &tenant)
	if tenant.Name != "ACME" || tenant.GroupLimit != 20 || tenant.Techpass.Upstream != client.Simulator {
		t.Errorf("tenant: %+v", tenant)
	}
	want(t, g.run(t, op, "tenants", "create", "ACME"), cli.ExitConflict, "tenants create again")
	r = g.run(t, op, "tenants", "list")
	want(t, r, cli.ExitOK, "tenants list")
	if !regexp.MustCompile(`(?m)^ACME\s+20\s+`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^SHIP\s+50\s+`).MatchString(r.stdout) {
		t.Errorf("tenants list: %s", r)
	}

	// A tenant on a real upstream names its credentials by reference only.
	secret := filepath.Join(dir, "client-secret")
	writeFile(t, secret, "not-a-real-secret\n", 0o600)
	r = g.run(t, op, "tenants", "create", "REAL", "--api-url", "http://127.0.0.1:1", "--directory-id", "dir-real", "--client-id", "client-real",
		"--client-secret-file", secret, "--api-key-file", secret, "-o", "json")
	want(t, r, cli.ExitOK, "tenants create with an upstream")
	decode(t, r, &tenant)
	if tp := tenant.Techpass; tp.Upstream != client.Techpass || tp.ClientSecret.Kind != client.File || str(tp.ClientSecret.Ref) != secret || tp.ApiKey.Kind != client.File {
		t.Errorf("tenant with an upstream: %+v", tp)
	}

	r = g.run(t, op, "tenants", "create", "TBL")
	want(t, r, cli.ExitOK, "tenants create (table)")
	if !regexp.MustCompile(`(?m)^NAME\s+TBL\n^GROUP LIMIT\s+50\n^INTERVAL\s+\S+s\n^UPSTREAM\s+simulator\n^CREATED\s+20`).MatchString(r.stdout) {
		t.Errorf("tenants create table: %s", r)
	}
	r = g.run(t, op, "projects", "create", "moh", "--tenant", "ACME", "--group-quota", "5")
	want(t, r, cli.ExitOK, "projects create")
	if !regexp.MustCompile(`(?m)^NAME\s+MOH\n^TENANT\s+ACME\n^GROUP QUOTA\s+5\n^CREATED\s+20`).MatchString(r.stdout) {
		t.Errorf("projects create table: %s", r)
	}
	r = g.run(t, op, "projects", "list", "--tenant", "ACME", "-o", "json")
	want(t, r, cli.ExitOK, "projects list")
	var pl client.ProjectList
	decode(t, r, &pl)
	if len(pl.Projects) != 1 || pl.Projects[0].Name != "MOH" || pl.Projects[0].GroupQuota != 5 {
		t.Errorf("projects: %+v", pl)
	}
	want(t, g.run(t, op, "projects", "list", "--tenant", "NOPE"), cli.ExitNotFound, "projects of a missing tenant")

	// A tenant-admin key into a new private file: not on stdout.
	adminFile := filepath.Join(dir, "admin.key")
	r = g.run(t, op, "keys", "issue", "--name", "acme admins", "--role", "tenant-admin", "--tenant", "ACME", "--out", adminFile, "-o", "json")
	want(t, r, cli.ExitOK, "keys issue --out")
	fi, err := os.Stat(adminFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	adminKey, _ := os.ReadFile(adminFile)
	if !strings.HasPrefix(string(adminKey), "gk_") || strings.Contains(r.stdout, strings.TrimSpace(string(adminKey))) || strings.Contains(r.stdout, `"key"`) {
		t.Errorf("issued key in %s, output: %s", adminKey, r)
	}
	g.secrets = append(g.secrets, strings.TrimSpace(string(adminKey)))
	want(t, g.run(t, op, "keys", "issue", "--name", "again", "--role", "tenant-admin", "--tenant", "ACME", "--out", adminFile), cli.ExitUsage, "--out over an existing file")
	// --out where no file can be made: nothing is issued. A refused issue
	// leaves no file behind.
	r = g.run(t, op, "keys", "issue", "--name", "lost", "--role", "tenant-admin", "--tenant", "ACME", "--out", filepath.Join(dir, "missing", "lost.key"))
	want(t, r, cli.ExitUsage, "--out in a missing directory")
	refused := filepath.Join(dir, "refused.key")
	want(t, g.runBadInput(t, op, "keys", "issue", "--name", "refused", "--role", "no-such-role", "--out", refused), cli.ExitError, "a refused issue with --out")
	if _, err := os.Stat(refused); !os.IsNotExist(err) {
		t.Errorf("a refused issue left its --out file: %v", err)
	}
	r = g.run(t, op, "keys", "list", "-o", "json")
	var kl client.KeyList
	decode(t, r, &kl)
	for _, k := range kl.Keys {
		if k.Name == "lost" || k.Name == "refused" {
			t.Errorf("a key was issued with nowhere to go: %+v", k)
		}
	}

	// As the tenant-admin: a project key, shown once on stdout.
	admin := map[string]string{"GROUPGATE_KEY_FILE": adminFile}
	r = g.run(t, admin, "keys", "issue", "--name", "moh backend", "--tenant", "ACME", "--project", "MOH", "--scopes", "groups:read,groups:write", "--expires", "2160h", "-o", "json")
	want(t, r, cli.ExitOK, "keys issue (project)")
	var issued client.KeyCreated
	decode(t, r, &issued)
	if !strings.HasPrefix(issued.Key, "gk_"+issued.Id+"_") || issued.ExpiresAt == nil || len(issued.Scopes) != 2 {
		t.Fatalf("issued: %+v", issued)
	}
	g.secrets = append(g.secrets, issued.Key)
	// As a table: the key in its row, once.
	r = g.run(t, admin, "keys", "issue", "--name", "moh table", "--tenant", "ACME", "--project", "MOH")
	want(t, r, cli.ExitOK, "keys issue (table)")
	row := regexp.MustCompile(`(?m)^KEY\s+(gk_\S+)  \(shown once: store it now\)\n^ID\s+(\S+)\n^NAME\s+moh table\n^ROLE\s+project\n^TENANT\s+ACME\n^PROJECT\s+MOH\n`).FindStringSubmatch(r.stdout)
	if row == nil || !strings.HasPrefix(row[1], "gk_"+row[2]+"_") {
		t.Errorf("keys issue table: %s", r)
	} else {
		g.secrets = append(g.secrets, row[1])
	}
	moh := map[string]string{"GROUPGATE_KEY": issued.Key, "GROUPGATE_TENANT": "acme", "GROUPGATE_PROJECT": "moh"}
	r = g.run(t, moh, "groups", "create", "ops", "--wait")
	want(t, r, cli.ExitOK, "the issued key creates a group")
	if !strings.Contains(r.stdout, "ACME:MOH:ops") {
		t.Errorf("create with the issued key: %s", r)
	}
	// Its scopes leave out members: 403, exit 4.
	want(t, g.run(t, moh, "groups", "members", "list", "ops"), cli.ExitAuth, "members without the scope")

	r = g.run(t, admin, "keys", "list")
	want(t, r, cli.ExitOK, "keys list")
	if !regexp.MustCompile(`(?m)^` + issued.Id + `\s+moh backend\s+project\s+ACME\s+MOH\s+active\s`).MatchString(r.stdout) {
		t.Errorf("keys list: %s", r)
	}
	r = g.run(t, admin, "keys", "revoke", issued.Id)
	want(t, r, cli.ExitOK, "keys revoke")
	if !regexp.MustCompile(`(?m)^STATE\s+revoked$`).MatchString(r.stdout) {
		t.Errorf("revoke: %s", r)
	}
	want(t, g.run(t, moh, "groups", "list"), cli.ExitAuth, "a revoked key")
	r = g.run(t, admin, "keys", "get", issued.Id, "-o", "json")
	want(t, r, cli.ExitOK, "keys get")
	var k client.Key
	decode(t, r, &k)
	if k.State != client.KeyStateRevoked {
		t.Errorf("key: %+v", k)
	}
	want(t, g.run(t, admin, "keys", "get", "0123456789abcdef0123"), cli.ExitNotFound, "keys get a missing key")

	// The audit log, filtered; a project key may not read it.
	r = g.run(t, op, "audit", "--action", "key.create", "--since", "1h", "-o", "json")
	want(t, r, cli.ExitOK, "audit")
	var page client.AuditPage
	decode(t, r, &page)
	// Three keys issued, one refused (the bad role; "lost" never reached
	// the server).
	if len(page.Entries) != 4 {
		t.Errorf("key.create entries: %+v", page.Entries)
	}
	for _, e := range page.Entries {
		if e.Action != "key.create" {
			t.Errorf("filtered audit: %+v", e)
		}
	}
	r = g.run(t, op, "audit", "--limit", "1", "-o", "json")
	decode(t, r, &page)
	if len(page.Entries) != 1 || page.Next == nil {
		t.Fatalf("audit, first page: %+v", page)
	}
	first := page.Entries[0]
	r = g.run(t, op, "audit", "--limit", "1", "--cursor", *page.Next, "-o", "json")
	want(t, r, cli.ExitOK, "audit --cursor")
	page = client.AuditPage{}
	decode(t, r, &page)
	if len(page.Entries) != 1 || page.Entries[0].Time.After(first.Time) || fmt.Sprint(page.Entries[0]) == fmt.Sprint(first) {
		t.Errorf("audit, second page: %+v after %+v", page.Entries, first)
	}
	r = g.run(t, admin, "audit", "--limit", "1")
	want(t, r, cli.ExitOK, "audit as tenant-admin")
	if !regexp.MustCompile(`(?m)^TIME\s+ACTOR\s+ROLE\s+ACTION`).MatchString(r.stdout) || !strings.Contains(r.stderr, "--cursor") {
		t.Errorf("audit table: %s", r)
	}
	want(t, g.run(t, g.project(), "audit"), cli.ExitAuth, "audit as a project")
}

// TestRateLimited: a 429 is exit 1 and says when to retry (Retry-After is a
// header, which a user of the command line would not see otherwise).
func TestRateLimited(t *testing.T) {
	g := startGateway(t, 20*time.Millisecond, func(c *config.Config) {
		c.RateLimit = config.RateLimitConfig{PerSecond: 0.01, Burst: 1}
	})
	want(t, g.run(t, g.project(), "groups", "list"), cli.ExitOK, "first request")
	r := g.run(t, g.project(), "groups", "list")
	want(t, r, cli.ExitError, "over the rate")
	if !regexp.MustCompile(`\(429\): .*\(Retry-After: [1-9][0-9]* s\)`).MatchString(r.stderr) {
		t.Errorf("429: %s", r)
	}
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
