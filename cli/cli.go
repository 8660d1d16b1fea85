package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Exit statuses. Scripts may rely on them; they are listed in every --help
// and in the README.
const (
	ExitOK       = 0 // done
	ExitError    = 1 // any other failure: the server refused the request (400, 422, 429, 5xx), or it could not be reached
	ExitUsage    = 2 // the command line is wrong, or the credential is missing or unsafe; nothing was sent
	ExitNotFound = 3 // 404: no such group, operation, key, tenant or project (or not yours to see)
	ExitAuth     = 4 // 401 or 403: the credential was refused, or may not do this
	ExitConflict = 5 // 409 or 412: conflicts with the current state (name taken, not cancellable, stale ETag, quota)
	ExitOpFailed = 6 // the operation waited for ended failed or cancelled
	ExitTimeout  = 7 // --timeout passed before the operation finished
	// ExitInterrupted is Ctrl-C (SIGINT or SIGTERM), as shells report it.
	ExitInterrupted = 130
)

const exitCodesHelp = `Exit status:
  0  done
  1  the server refused the request (400, 422, 429, 5xx) or could not be reached
  2  usage: a wrong command line, or no (or an unsafe) credential; nothing was sent
  3  not found (404)
  4  credential refused or not allowed (401, 403)
  5  conflict or failed precondition (409, 412)
  6  the operation ended failed or cancelled (--wait, operations wait)
  7  timed out waiting (--timeout)
  130  interrupted (Ctrl-C); a write may have been received: the message says how to check
`

// DefaultURL is where `make run` (groupgate -demo) listens.
const DefaultURL = "http://127.0.0.1:8080"

// Env is everything Run takes from its process. The zero value of an
// optional field has the default its comment gives.
type Env struct {
	Stdout, Stderr io.Writer
	// Getenv reads GROUPGATE_KEY, GROUPGATE_URL, GROUPGATE_KEY_FILE,
	// GROUPGATE_TENANT and GROUPGATE_PROJECT.
	Getenv func(string) string
	// HTTPClient defaults to a client with a 2-minute timeout.
	HTTPClient *http.Client
	// Now defaults to time.Now.
	Now func() time.Time
	// Interactive reports whether stderr is a terminal, where
	// `operations wait` redraws one progress line; defaults to checking
	// whether Stderr is a character device.
	Interactive func() bool
	// PollInterval is the shortest gap between two polls of an operation;
	// defaults to one second.
	PollInterval time.Duration
}

func (e *Env) defaults() {
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.HTTPClient == nil { // redirects are never followed (see conn.connect)
		e.HTTPClient = &http.Client{Timeout: 2 * time.Minute}
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Interactive == nil {
		e.Interactive = func() bool { return isTerminal(e.Stderr) }
	}
	if e.PollInterval <= 0 {
		e.PollInterval = time.Second
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// IsCommand reports whether name is one of the command-line client's
// commands (rather than a flag of the server or another subcommand).
func IsCommand(name string) bool {
	for _, c := range root().subs {
		if c.name == name {
			return true
		}
	}
	return name == "help"
}

// Usage writes the overview of the client's commands to w.
func Usage(w io.Writer) {
	root().writeUsage(w, "groupgate")
}

// Run runs one command line (args without the program name, starting with
// the command) and returns the exit status.
func Run(ctx context.Context, args []string, env Env) int {
	env.defaults()
	if len(args) > 0 && args[0] == "help" {
		// `groupgate help groups create` is `groupgate groups create --help`.
		args = append(args[1:len(args):len(args)], "--help")
	}
	return root().run(ctx, &env, "groupgate", args)
}

// keyFlag reports whether arg is a flag that would carry a credential on
// the command line, and its name.
func keyFlag(arg string) (string, bool) {
	if !strings.HasPrefix(arg, "-") {
		return "", false
	}
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	switch strings.ToLower(name) {
	case "key", "api-key", "apikey", "token", "bearer", "password", "secret", "operator-key":
		return "-" + name, true
	}
	return "", false
}

func keyFlagError(name string) error {
	return usagef("%s: a key is never taken as a flag value (it would show in the process list and the shell history); set GROUPGATE_KEY or use --key-file", name)
}

// node is a command: either a group of subcommands or a leaf that runs.
type node struct {
	name    string
	args    string // synopsis of the positional arguments, for usage
	summary string
	subs    []*node
	// leaf commands: flags registers the command's own flags and returns
	// the function that runs it with the positional arguments, between
	// min and max of them (max -1: no limit), none empty. It runs with
	// c.api connected.
	flags    func(fs *flag.FlagSet, c *conn) func(ctx context.Context, args []string) error
	min, max int
	// scope says which common flags the leaf takes.
	scope scope
}

type scope int

const (
	scopeNone    scope = iota // --url, --key-file, -o
	scopeProject              // plus --tenant and --project
	scopeTenant               // plus --tenant
)

func (n *node) run(ctx context.Context, env *Env, path string, args []string) int {
	path = strings.TrimSpace(path + " " + n.name)
	if n.flags == nil {
		if len(args) == 0 {
			n.writeUsage(env.Stderr, path)
			return ExitUsage
		}
		switch args[0] {
		case "-h", "-help", "--help":
			n.writeUsage(env.Stdout, path)
			return ExitOK
		}
		for _, s := range n.subs {
			if s.name == args[0] {
				return s.run(ctx, env, path, args[1:])
			}
		}
		if name, ok := keyFlag(args[0]); ok {
			return fail(env, path, keyFlagError(name))
		}
		fmt.Fprintf(env.Stderr, "%s: unknown command %q\n\n", path, clean(args[0]))
		n.writeUsage(env.Stderr, path)
		return ExitUsage
	}

	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := &conn{env: env}
	c.bind(fs, n.scope)
	runFn := n.flags(fs, c)
	args, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		n.writeLeafUsage(env.Stdout, path, fs)
		return ExitOK
	}
	if err == nil {
		err = n.positional(args)
	}
	if err == nil {
		err = c.connect()
	}
	if err == nil {
		err = runFn(ctx, args)
	}
	return fail(env, path, err)
}

// fail reports err, if any, and returns its exit status.
func fail(env *Env, path string, err error) int {
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	fmt.Fprintf(env.Stderr, "%s: %v\n", path, err)
	if code == ExitUsage {
		fmt.Fprintf(env.Stderr, "Run '%s --help' for usage.\n", path)
	}
	return code
}

// positional checks the positional arguments.
func (n *node) positional(args []string) error {
	if len(args) < n.min || (n.max >= 0 && len(args) > n.max) {
		want := n.args
		if want == "" {
			want = "no arguments"
		}
		return usagef("want %s, got %d argument(s)", want, len(args))
	}
	for i, a := range args {
		if strings.TrimSpace(a) == "" {
			return usagef("argument %d is empty", i+1)
		}
	}
	return nil
}

// parseInterspersed parses flags wherever they appear among the positional
// arguments (`groups create billing --description x`), up to a "--" in the
// place of a flag (not as a flag's value). A flag that would carry a
// credential is refused.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		a := args[0]
		if a == "--" {
			return append(pos, args[1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			pos, args = append(pos, a), args[1:]
			continue
		}
		if name, ok := keyFlag(a); ok {
			return nil, keyFlagError(name)
		}
		// One flag at a time: its value, if separate, is the next word.
		n := 1
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if f := fs.Lookup(name); f != nil && !hasValue && !isBool(f) && len(args) > 1 {
			n = 2
		}
		if err := fs.Parse(args[:n]); err != nil {
			return nil, usagef("%w", err)
		}
		args = args[n:]
	}
	return pos, nil
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (n *node) writeUsage(w io.Writer, path string) {
	fmt.Fprintf(w, "Usage: %s <command> [arguments] [flags]\n\n", path)
	if n.summary != "" {
		fmt.Fprintf(w, "%s\n\n", n.summary)
	}
	fmt.Fprintf(w, "Commands:\n")
	for _, s := range n.subs {
		name := s.name
		if s.flags != nil && s.args != "" {
			name += " " + s.args
		}
		fmt.Fprintf(w, "  %-28s %s\n", name, firstLine(s.summary))
	}
	fmt.Fprintf(w, "\nRun '%s <command> --help' for a command's flags.\n", path)
	if path == "groupgate" {
		fmt.Fprint(w, connHelp)
	}
	fmt.Fprintf(w, "\n%s", exitCodesHelp)
}

func (n *node) writeLeafUsage(w io.Writer, path string, fs *flag.FlagSet) {
	synopsis := path
	if n.args != "" {
		synopsis += " " + n.args
	}
	fmt.Fprintf(w, "Usage: %s [flags]\n\n%s\n\nFlags:\n", synopsis, n.summary)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprint(w, connHelp)
	fmt.Fprintf(w, "\n%s", exitCodesHelp)
}

const connHelp = `
The server is --url, else $GROUPGATE_URL, else ` + DefaultURL + `.
The credential (an API key gk_... or a JWT) is read from the file --key-file
(or $GROUPGATE_KEY_FILE; it must not be readable by group or others), else
from $GROUPGATE_KEY. It is never taken as a flag value and never printed.
Plain http:// is refused for any host but this machine (--insecure-http
to insist); redirects are not followed.
`

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
