package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/config"
)

// Paths, relative to this package's directory (where go test runs).
const (
	dockerfilePath   = "../Dockerfile"
	dockerignorePath = "../.dockerignore"
	examplePath      = "config.example.yaml"
	unitPath         = "systemd/groupgate.service"
)

// secretNameRE flags ENV, ARG and Environment= names that look like they
// carry a secret, which would then be baked into an image layer or shown by
// `systemctl show`.
var secretNameRE = regexp.MustCompile(`(?i)KEY|KEK|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL`)

// ---------------------------------------------------------------------------
// Dockerfile

// instruction is one Dockerfile instruction with its continuation lines
// joined.
type instruction struct {
	Line  int      // line of its first word, 1-based
	Cmd   string   // keyword, upper-cased: FROM, RUN, COPY, ...
	Flags []string // leading --name[=value] words, e.g. --from=build
	Args  string   // the rest, as written (continuations joined by a space)
}

// stage is a FROM instruction and those that follow it.
type stage struct {
	Index        int
	Name         string // after AS; "" if unnamed
	Base         string // the image (or earlier stage) it starts from
	Instructions []instruction
}

// parseDockerfile splits a Dockerfile into instructions. It understands what
// this project's Dockerfile may use: parser directives and comments (which
// are dropped, also inside a continuation), backslash continuations, blank
// lines inside a continuation, and leading --flags. A different escape
// character and heredocs are refused rather than misread.
func parseDockerfile(r io.Reader) ([]instruction, error) {
	var (
		out     []instruction
		buf     []string
		start   int
		lineNum int
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		lineNum++
		raw := sc.Text()
		trimmed := strings.TrimSpace(raw)
		if strings.HasPrefix(trimmed, "#") {
			if d, ok := strings.CutPrefix(strings.ToLower(strings.ReplaceAll(trimmed, " ", "")), "#escape="); ok && len(out) == 0 && d != `\` {
				return nil, fmt.Errorf("line %d: escape character %q is not supported", lineNum, d)
			}
			continue // comments, and parser directives, also inside a continuation
		}
		if trimmed == "" {
			continue // blank lines never end a continuation
		}
		if len(buf) == 0 {
			start = lineNum
		}
		body, continued := strings.CutSuffix(strings.TrimRight(raw, " \t"), `\`)
		buf = append(buf, strings.TrimSpace(body))
		if continued {
			continue
		}
		ins, err := splitInstruction(start, strings.Join(buf, " "))
		if err != nil {
			return nil, err
		}
		out = append(out, ins)
		buf = buf[:0]
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(buf) > 0 {
		return nil, fmt.Errorf("line %d: the file ends inside a continuation", start)
	}
	return out, nil
}

var heredocRE = regexp.MustCompile(`<<-?["']?[A-Za-z_]`)

func splitInstruction(line int, text string) (instruction, error) {
	cmd, rest, _ := strings.Cut(text, " ")
	ins := instruction{Line: line, Cmd: strings.ToUpper(cmd)}
	rest = strings.TrimSpace(rest)
	for strings.HasPrefix(rest, "--") {
		var flag string
		flag, rest, _ = strings.Cut(rest, " ")
		ins.Flags = append(ins.Flags, flag)
		rest = strings.TrimSpace(rest)
	}
	ins.Args = rest
	if (ins.Cmd == "RUN" || ins.Cmd == "COPY") && heredocRE.MatchString(ins.Args) {
		return ins, fmt.Errorf("line %d: heredocs are not supported by this linter", line)
	}
	return ins, nil
}

// flag returns the value of --name=value, and whether it was given.
func (ins instruction) flag(name string) (string, bool) {
	for _, f := range ins.Flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v, true
		}
		if f == "--"+name {
			return "", true
		}
	}
	return "", false
}

// execForm returns the arguments of a JSON-array (exec form) instruction.
func (ins instruction) execForm() ([]string, bool) {
	if !strings.HasPrefix(ins.Args, "[") {
		return nil, false
	}
	var args []string
	if err := json.Unmarshal([]byte(ins.Args), &args); err != nil || len(args) == 0 {
		return nil, false
	}
	return args, true
}

// words returns an instruction's arguments: the JSON array if it is one, or
// its space-separated words.
func (ins instruction) words() []string {
	if args, ok := ins.execForm(); ok {
		return args
	}
	return strings.Fields(ins.Args)
}

// stages groups instructions by FROM. Instructions before the first FROM
// (only ARG is allowed there) are returned as globals.
func stages(all []instruction) (globals []instruction, out []stage, err error) {
	for _, ins := range all {
		if ins.Cmd != "FROM" {
			if len(out) == 0 {
				globals = append(globals, ins)
				continue
			}
			out[len(out)-1].Instructions = append(out[len(out)-1].Instructions, ins)
			continue
		}
		f := strings.Fields(ins.Args)
		st := stage{Index: len(out)}
		switch {
		case len(f) == 1:
			st.Base = f[0]
		case len(f) == 3 && strings.EqualFold(f[1], "AS"):
			st.Base, st.Name = f[0], f[2]
		default:
			return nil, nil, fmt.Errorf("line %d: FROM %s: want an image and an optional AS name", ins.Line, ins.Args)
		}
		out = append(out, st)
	}
	return globals, out, nil
}

// dockerfile is the parsed Dockerfile and the facts the lint derived from it.
type dockerfile struct {
	Stages     []stage
	Binary     string   // where the final stage holds the server binary
	Entrypoint []string // exec form
	Cmd        []string // exec form
	User       string   // the final stage's USER
	Expose     []string
	Volumes    []string
}

var (
	goBuildOutputRE = regexp.MustCompile(`(?:^|\s)-o[ =](\S+)`)
	cgoDisabledRE   = regexp.MustCompile(`(?:^|\s)CGO_ENABLED=0(?:\s|$)`)
	remoteSourceRE  = regexp.MustCompile(`(?i)^(https?://|git@|git://)`)
	envAssignRE     = regexp.MustCompile(`(?:^|\s)([A-Za-z_][A-Za-z0-9_.-]*)=`)
)

// lintDockerfile lints the server's image: lintDockerfileOf for
// ./cmd/groupgate.
func lintDockerfile(src string) (dockerfile, []string) {
	return lintDockerfileOf(src, "./cmd/groupgate")
}

// lintDockerfileOf checks the build of an image of command: at least two
// named stages, a distroless/static or scratch final stage without RUN (it
// has no shell), a numeric non-root USER, a CGO_ENABLED=0 build of command
// copied from its stage, exec-form ENTRYPOINT (the binary) and CMD, no ADD
// of remote sources and no secret-looking ENV or ARG. It returns every
// problem.
func lintDockerfileOf(src, command string) (dockerfile, []string) {
	var (
		d        dockerfile
		problems []string
	)
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	all, err := parseDockerfile(strings.NewReader(src))
	if err != nil {
		return d, []string{err.Error()}
	}
	globals, sts, err := stages(all)
	if err != nil {
		return d, []string{err.Error()}
	}
	d.Stages = sts
	for _, ins := range globals {
		if ins.Cmd != "ARG" {
			add("line %d: %s before the first FROM (only ARG may come first)", ins.Line, ins.Cmd)
		}
	}
	if len(sts) < 2 {
		add("want a multi-stage build (a build stage and a runtime stage), got %d stage(s)", len(sts))
		return d, problems
	}
	for _, st := range sts {
		if st.Name == "" {
			add("stage %d (FROM %s) has no AS name", st.Index, st.Base)
		}
	}

	// Anywhere: no remote ADD, no secret-looking ENV or ARG.
	everything := append(slices.Clone(globals), all...)
	for _, ins := range everything {
		switch ins.Cmd {
		case "ADD":
			for _, w := range ins.words() {
				if remoteSourceRE.MatchString(w) {
					add("line %d: ADD of a remote source %s (download in a RUN with a checksum, or COPY)", ins.Line, w)
				}
			}
		case "ARG":
			for _, w := range strings.Fields(ins.Args) {
				name, _, _ := strings.Cut(w, "=")
				if secretNameRE.MatchString(name) {
					add("line %d: ARG %s looks like a secret; build args are kept in the image history", ins.Line, name)
				}
			}
		case "ENV":
			var names []string
			if first, _, _ := strings.Cut(ins.Args, " "); strings.Contains(first, "=") {
				for _, m := range envAssignRE.FindAllStringSubmatch(ins.Args, -1) {
					names = append(names, m[1])
				}
			} else {
				names = []string{first}
			}
			for _, name := range names {
				if secretNameRE.MatchString(name) {
					add("line %d: ENV %s looks like a secret; mount secrets as files at run time", ins.Line, name)
				}
			}
		}
	}

	// The build: a CGO_ENABLED=0 `go build` of the command in an earlier
	// stage.
	type output struct{ stage, path string }
	var outputs []output
	for _, st := range sts[:len(sts)-1] {
		stageCGO := false
		for _, ins := range st.Instructions {
			if ins.Cmd == "ENV" && cgoDisabledRE.MatchString(" "+ins.Args) {
				stageCGO = true
			}
			if ins.Cmd != "RUN" || !strings.Contains(ins.Args, "go build") || !strings.Contains(ins.Args, command) {
				continue
			}
			if !stageCGO && !cgoDisabledRE.MatchString(ins.Args) {
				add("line %d: go build without CGO_ENABLED=0: the binary would not be static", ins.Line)
			}
			m := goBuildOutputRE.FindStringSubmatch(ins.Args)
			if m == nil {
				add("line %d: go build has no -o output path", ins.Line)
				continue
			}
			outputs = append(outputs, output{stage: st.Name, path: m[1]})
		}
	}
	if len(outputs) == 0 {
		add("no build stage runs go build ... %s", command)
	}

	final := sts[len(sts)-1]
	if final.Base != "scratch" && !strings.HasPrefix(final.Base, "gcr.io/distroless/static") {
		add("final stage is FROM %s: want gcr.io/distroless/static... or scratch", final.Base)
	}
	var user string
	for _, ins := range final.Instructions {
		switch ins.Cmd {
		case "RUN":
			add("line %d: RUN in the final stage, which has no shell", ins.Line)
		case "USER":
			user = ins.Args
		case "COPY":
			from, ok := ins.flag("from")
			if !ok {
				continue
			}
			w := ins.words()
			if len(w) != 2 {
				continue
			}
			for _, o := range outputs {
				if (from == o.stage || from == strconv.Itoa(slices.IndexFunc(sts, func(s stage) bool { return s.Name == o.stage }))) && path.Clean(w[0]) == path.Clean(o.path) {
					d.Binary = path.Clean(w[1])
				}
			}
		case "ENTRYPOINT", "CMD":
			args, ok := ins.execForm()
			if !ok {
				add("line %d: %s must be an exec-form JSON array, so signals reach the server", ins.Line, ins.Cmd)
				continue
			}
			if ins.Cmd == "CMD" {
				d.Cmd = args
			} else {
				d.Entrypoint = args
			}
		case "EXPOSE":
			d.Expose = append(d.Expose, ins.words()...)
		case "VOLUME":
			d.Volumes = append(d.Volumes, ins.words()...)
		}
	}
	d.User = user
	switch uid, gid, _ := strings.Cut(user, ":"); {
	case user == "":
		add("final stage has no USER: it would run as root")
	case !isNonRootID(uid) || (gid != "" && !isNonRootID(gid)):
		add("final USER %q: want a numeric non-root uid[:gid] (e.g. 65532:65532), so runAsNonRoot can verify it", user)
	}
	if d.Binary == "" {
		add("the final stage does not COPY --from the build stage's go build output")
	}
	if len(d.Entrypoint) == 0 {
		add("final stage has no ENTRYPOINT")
	} else if d.Binary != "" && d.Entrypoint[0] != d.Binary {
		add("ENTRYPOINT runs %s, but the binary is copied to %s", d.Entrypoint[0], d.Binary)
	}
	return d, problems
}

func isNonRootID(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustLintDockerfile(t *testing.T) dockerfile {
	t.Helper()
	d, problems := lintDockerfile(readFile(t, dockerfilePath))
	for _, p := range problems {
		t.Errorf("Dockerfile: %s", p)
	}
	return d
}

func TestDockerfile(t *testing.T) {
	d := mustLintDockerfile(t)
	if t.Failed() {
		return
	}
	if d.Binary != "/groupgate" || !slices.Equal(d.Entrypoint, []string{"/groupgate"}) {
		t.Errorf("binary at %s, ENTRYPOINT %q: want /groupgate and [\"/groupgate\"]", d.Binary, d.Entrypoint)
	}
	if !slices.Equal(d.Cmd, []string{"-config", "/etc/groupgate/config.yaml"}) {
		t.Errorf("CMD %q: want [\"-config\", \"/etc/groupgate/config.yaml\"]", d.Cmd)
	}

	// The image agrees with the example configuration: the port it exposes
	// is the one the server listens on, and the store is on the volume.
	cfg := loadExample(t)
	_, port, _ := strings.Cut(cfg.Listen, ":")
	if !slices.Contains(d.Expose, port) && !slices.Contains(d.Expose, port+"/tcp") {
		t.Errorf("EXPOSE %v does not include the example's listen port %s", d.Expose, port)
	}
	if !slices.Contains(d.Volumes, filepath.Dir(cfg.StorePath)) {
		t.Errorf("VOLUME %v does not hold the example's store_path %s", d.Volumes, cfg.StorePath)
	}
}

// TestDockerfileLint shows the lint catches each mistake it is there for: every
// case breaks the real Dockerfile in one way.
func TestDockerfileLint(t *testing.T) {
	runLintCases(t, readFile(t, dockerfilePath), func(src string) []string {
		_, problems := lintDockerfile(src)
		return problems
	}, []lintCase{
		{"single stage", "FROM gcr.io/distroless/static-debian12:nonroot AS runtime", "#", "multi-stage"},
		{"unnamed stage", " AS build\n", "\n", "no AS name"},
		{"debian runtime", "FROM gcr.io/distroless/static-debian12:nonroot AS runtime", "FROM debian:12 AS runtime", "want gcr.io/distroless/static"},
		{"root user", "USER 65532:65532", "USER 0", "numeric non-root"},
		{"named user", "USER 65532:65532", "USER nonroot", "numeric non-root"},
		{"root group", "USER 65532:65532", "USER 65532:0", "numeric non-root"},
		{"no user", "USER 65532:65532", "", "no USER"},
		{"cgo", "CGO_ENABLED=0 GOOS", "GOOS", "CGO_ENABLED=0"},
		{"binary not copied", "COPY --from=build /out/groupgate /groupgate", "COPY groupgate /groupgate", "does not COPY --from"},
		{"shell entrypoint", `ENTRYPOINT ["/groupgate"]`, "ENTRYPOINT /groupgate", "exec-form"},
		{"wrong entrypoint", `ENTRYPOINT ["/groupgate"]`, `ENTRYPOINT ["/bin/groupgate"]`, "ENTRYPOINT runs /bin/groupgate"},
		{"remote add", "COPY go.mod go.sum ./", "ADD https://example.com/x.tar.gz /x\nCOPY go.mod go.sum ./", "remote source"},
		{"secret env", "ARG REVISION=unknown", "ARG REVISION=unknown\nENV GROUPGATE_KEK=c2VjcmV0", "ENV GROUPGATE_KEK"},
		{"secret arg", "ARG REVISION=unknown", "ARG REVISION=unknown\nARG TECHPASS_API_KEY", "ARG TECHPASS_API_KEY"},
		{"run in runtime", "USER 65532:65532", "RUN mkdir /x\nUSER 65532:65532", "no shell"},
	})
}

// lintCase breaks a linted file in one way: old replaced by new must give a
// problem mentioning want.
type lintCase struct{ name, old, new, want string }

// runLintCases runs each case in its own subtest: lint of good with the one
// change must report a problem mentioning the case's want. A case whose old
// text good no longer holds fails, so a case cannot pass by changing
// nothing.
func runLintCases(t *testing.T, good string, lint func(src string) []string, cases []lintCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the file no longer contains %q; update this case", tc.old)
			}
			problems := lint(strings.Replace(good, tc.old, tc.new, 1))
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("want a problem mentioning %q, got %q", tc.want, problems)
			}
		})
	}
}

func TestParseDockerfile(t *testing.T) {
	src := "# syntax=docker/dockerfile:1\n" +
		"ARG V=1\n" +
		"FROM --platform=$BUILDPLATFORM golang:1.26 AS build\n" +
		"RUN --mount=type=cache,target=/x \\\n" +
		"    # a comment inside a continuation\n" +
		"\n" +
		"    echo a \\\n" +
		"    && echo b\n" +
		"copy --from=build --chown=1:1 /a /b\n"
	got, err := parseDockerfile(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []instruction{
		{Line: 2, Cmd: "ARG", Args: "V=1"},
		{Line: 3, Cmd: "FROM", Flags: []string{"--platform=$BUILDPLATFORM"}, Args: "golang:1.26 AS build"},
		{Line: 4, Cmd: "RUN", Flags: []string{"--mount=type=cache,target=/x"}, Args: "echo a && echo b"},
		{Line: 9, Cmd: "COPY", Flags: []string{"--from=build", "--chown=1:1"}, Args: "/a /b"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d instructions %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].Line != want[i].Line || got[i].Cmd != want[i].Cmd || got[i].Args != want[i].Args || !slices.Equal(got[i].Flags, want[i].Flags) {
			t.Errorf("instruction %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"# escape=`\nFROM x\n", "FROM x\nRUN a \\\n", "FROM x\nRUN <<EOF\necho\nEOF\n"} {
		if _, err := parseDockerfile(strings.NewReader(bad)); err == nil {
			t.Errorf("parseDockerfile(%q): want an error", bad)
		}
	}
}

// ---------------------------------------------------------------------------
// The binary and the build context

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

func goTool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	return p
}

// buildEnv is the environment of the image's build: no cgo, Linux.
func buildEnv() []string { return append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux") }

// TestStaticBinary builds the server as the Dockerfile does and checks that
// it needs no dynamic loader or shared library, so it runs on
// distroless/static or scratch.
func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server")
	}
	goBin := goTool(t)
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "groupgate")
	cmd := exec.CommandContext(t.Context(), goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/groupgate")
	cmd.Dir = moduleRoot(t)
	cmd.Env = buildEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP program header: it needs a dynamic loader")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("the binary needs shared libraries (DT_NEEDED): %v", libs)
	}

	// And it runs: newkey needs neither configuration nor network.
	if runtime.GOOS != "linux" {
		return
	}
	out, err := exec.CommandContext(t.Context(), bin, "newkey").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("gk_")) {
		t.Errorf("groupgate newkey: %v\n%s", err, out)
	}
}

// dockerignore is a .dockerignore file: Docker's patterns, where ** spans
// directories, * and ? stay within one, a pattern also excludes everything
// under what it matches, and the last matching line (! re-includes) wins.
type dockerignore []struct {
	re      *regexp.Regexp
	include bool
}

func parseDockerignore(src string) (dockerignore, error) {
	var d dockerignore
	for n, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		include := strings.HasPrefix(line, "!")
		p := path.Clean(strings.TrimPrefix(strings.TrimPrefix(line, "!"), "/"))
		if strings.ContainsAny(p, `[\`) {
			return nil, fmt.Errorf("line %d: %q: character classes and escapes are not supported by this check", n+1, line)
		}
		var b strings.Builder
		b.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch {
			case strings.HasPrefix(p[i:], "**/"):
				b.WriteString("(?:.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "**"):
				b.WriteString(".*")
				i++
			case p[i] == '*':
				b.WriteString("[^/]*")
			case p[i] == '?':
				b.WriteString("[^/]")
			default:
				b.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		}
		b.WriteString("(?:/.*)?$")
		d = append(d, struct {
			re      *regexp.Regexp
			include bool
		}{regexp.MustCompile(b.String()), include})
	}
	return d, nil
}

// excluded reports whether the slash-separated path, relative to the build
// context, is left out of it.
func (d dockerignore) excluded(p string) bool {
	out := false
	for _, rule := range d {
		if rule.re.MatchString(p) {
			out = !rule.include
		}
	}
	return out
}

// TestDockerignore checks that the build context keeps every file `go build
// ./cmd/groupgate` reads (Go sources and embedded files of this module, go.mod
// and go.sum) and leaves out state, binaries and anything secret.
func TestDockerignore(t *testing.T) {
	ignore, err := parseDockerignore(readFile(t, dockerignorePath))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".git/config", ".data/groupgate.db", "bin/groupgate", "x/groupgate.db", "secrets/kek",
		"tenant/client.key", "tenant/client.pem", ".env", "config.yaml", "deploy/config.example.yaml"} {
		if !ignore.excluded(p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}

	goBin := goTool(t)
	root := moduleRoot(t)
	cmd := exec.CommandContext(t.Context(), goBin, "list", "-deps",
		"-f", `{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`,
		"./cmd/groupgate")
	cmd.Dir = root
	cmd.Env = buildEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, abs := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, abs)
		if err != nil {
			t.Fatal(err)
		}
		needed = append(needed, filepath.ToSlash(rel))
	}
	if !slices.Contains(needed, "openapi.yaml") || !slices.Contains(needed, "cmd/groupgate/main.go") {
		t.Fatalf("go list found too little (%v)", needed)
	}
	for _, p := range needed {
		if ignore.excluded(p) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", p)
		}
	}
}

// ---------------------------------------------------------------------------
// The example configuration

// loadExample reads config.example.yaml as groupgate does: defaults, the
// file, then validation. Validation checks the shape of every setting; it
// does not open the files the configuration names.
func loadExample(t *testing.T) config.Config {
	t.Helper()
	cfg := config.DefaultConfig()
	if err := cfg.LoadFile(examplePath); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: %v", examplePath, err)
	}
	return cfg
}

// credentialsDir is $CREDENTIALS_DIRECTORY of the systemd unit: where the
// example configuration's secret files are.
const credentialsDir = "/run/credentials/groupgate.service/"

// secretFiles returns every secret file the configuration names, by setting.
func secretFiles(cfg config.Config) map[string]string {
	files := map[string]string{
		"tls.cert_file": cfg.TLS.CertFile, "tls.key_file": cfg.TLS.KeyFile,
		"operator_key_file": cfg.OperatorKeyFile, "kek_file": cfg.KEKFile,
	}
	for i, tc := range cfg.Tenants {
		tp := tc.TechPass
		for name, v := range map[string]string{
			"client_secret_file": tp.ClientSecretFile, "client_certificate_file": tp.ClientCertificateFile,
			"client_key_file": tp.ClientKeyFile, "api_key_file": tp.APIKeyFile,
			"webhook_secret_file": tp.WebhookSecretFile, "previous_webhook_secret_file": tp.PreviousWebhookSecretFile,
		} {
			if v != "" {
				files[fmt.Sprintf("tenants[%d].techpass.%s", i, name)] = v
			}
		}
	}
	maps.DeleteFunc(files, func(_, v string) bool { return v == "" })
	return files
}

var (
	zeroUUIDRE = regexp.MustCompile(`^[0-]+$`)
	zeroHash   = "sha256:" + strings.Repeat("0", 64)
)

func TestExampleConfig(t *testing.T) {
	cfg := loadExample(t)
	if cfg.LogFormat != "json" {
		t.Errorf("log_format %q: want json", cfg.LogFormat)
	}
	if cfg.OperatorKeyFile == "" || cfg.KEKFile == "" {
		t.Error("operator_key_file and kek_file should both be shown")
	}
	if cfg.TLS.CertFile == "" || cfg.AllowHTTP {
		t.Error("the example should serve HTTPS (tls.cert_file and key_file), not allow_http")
	}
	if len(cfg.Tenants) == 0 {
		t.Fatal("no tenant")
	}
	for _, tc := range cfg.Tenants {
		tp := tc.TechPass
		if tp.APIURL != "https://api.techpass.gov.sg" {
			t.Errorf("tenant %s: api_url %q: want the real TechPass", tc.Name, tp.APIURL)
		}
		if tp.ClientSecretEnv != "" || tp.APIKeyEnv != "" {
			t.Errorf("tenant %s: secrets should come from files in the example", tc.Name)
		}
		// Placeholders stay obviously fake, so no real id is ever committed.
		if !zeroUUIDRE.MatchString(tp.DirectoryID) || !zeroUUIDRE.MatchString(tp.ClientID) {
			t.Errorf("tenant %s: directory_id %q and client_id %q should be all-zero placeholders", tc.Name, tp.DirectoryID, tp.ClientID)
		}
		for _, p := range tc.Projects {
			if len(p.Keys) == 0 {
				t.Errorf("tenant %s project %s: show a key entry", tc.Name, p.Name)
			}
			for _, k := range p.Keys {
				if strings.Trim(k.ID, "0") != "" || k.Hash != zeroHash {
					t.Errorf("tenant %s project %s: key %q %q should be all-zero placeholders", tc.Name, p.Name, k.ID, k.Hash)
				}
			}
		}
	}
	for setting, file := range secretFiles(cfg) {
		if !strings.HasPrefix(file, credentialsDir) || path.Base(file) == "" || strings.Contains(strings.TrimPrefix(file, credentialsDir), "/") {
			t.Errorf("%s: %s: want a file directly in %s", setting, file, credentialsDir)
		}
	}
}

// ---------------------------------------------------------------------------
// The systemd unit

// unitFile is a systemd unit: section, then key, then its values in order
// (a key may repeat; an empty value resets a list).
type unitFile map[string]map[string][]string

// parseUnit reads a unit file: [Section] headers, Key=Value lines, # and ;
// comments, and backslash continuations (joined by a space, as systemd does).
func parseUnit(r io.Reader) (unitFile, error) {
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(r)
	lineNum := 0
	var cont strings.Builder
	for sc.Scan() {
		lineNum++
		line := strings.TrimSpace(sc.Text())
		if cont.Len() == 0 && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cont.WriteString(body + " ")
			continue
		}
		cont.WriteString(line)
		line = cont.String()
		cont.Reset()
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("line %d: %q is not Key=Value in a section", lineNum, line)
		}
		key = strings.TrimSpace(key)
		u[section][key] = append(u[section][key], strings.TrimSpace(value))
	}
	return u, sc.Err()
}

// last returns a key's effective single value and whether it is set.
func (u unitFile) last(section, key string) (string, bool) {
	v := u[section][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// list returns a list setting's values since its last reset (an empty value).
func (u unitFile) list(section, key string) []string {
	v := u[section][key]
	for i := len(v) - 1; i >= 0; i-- {
		if v[i] == "" {
			return v[i+1:]
		}
	}
	return v
}

func unitBool(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}

var (
	timespanRE     = regexp.MustCompile(`^(?:\s*\d+(?:\.\d+)?\s*[a-z]*)+\s*$`)
	timespanPartRE = regexp.MustCompile(`(\d+(?:\.\d+)?)\s*([a-z]*)`)
	timespanUnits  = map[string]time.Duration{
		"": time.Second, "us": time.Microsecond, "usec": time.Microsecond, "ms": time.Millisecond, "msec": time.Millisecond,
		"s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
		"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
		"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour,
		"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	}
)

// parseTimespan reads a systemd time span such as "30s", "1min 30s" or "90"
// (seconds).
func parseTimespan(s string) (time.Duration, error) {
	if s == "infinity" {
		return time.Duration(1<<63 - 1), nil
	}
	if !timespanRE.MatchString(s) {
		return 0, fmt.Errorf("%q is not a time span", s)
	}
	var total time.Duration
	for _, m := range timespanPartRE.FindAllStringSubmatch(s, -1) {
		unit, ok := timespanUnits[m[2]]
		if !ok {
			return 0, fmt.Errorf("%q: unknown unit %q", s, m[2])
		}
		n, _ := strconv.ParseFloat(m[1], 64)
		total += time.Duration(n * float64(unit))
	}
	return total, nil
}

// lintUnit checks the unit's hardening, its start and reload commands, its
// stop timeout against shutdown_grace, and that it loads exactly the
// credentials cfg names, from absolute source paths.
func lintUnit(u unitFile, cfg config.Config) []string {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	const svc = "Service"
	if u[svc] == nil {
		return []string{"no [Service] section"}
	}

	for _, key := range []string{"NoNewPrivileges", "ProtectHome", "PrivateTmp"} {
		if v, _ := u.last(svc, key); !unitBool(v) {
			add("%s=yes is missing", key)
		}
	}
	if v, _ := u.last(svc, "ProtectSystem"); v != "strict" {
		add("ProtectSystem=strict is missing (got %q)", v)
	}
	if v, ok := u.last(svc, "CapabilityBoundingSet"); !ok || v != "" {
		add("CapabilityBoundingSet= (empty: no capabilities) is missing")
	}
	if v, _ := u.last(svc, "RestrictAddressFamilies"); !sameSet(strings.Fields(v), []string{"AF_INET", "AF_INET6", "AF_UNIX"}) {
		add("RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX is missing (got %q)", v)
	}
	if !slices.Contains(u.list(svc, "SystemCallFilter"), "@system-service") {
		add("SystemCallFilter=@system-service is missing")
	}
	if v, _ := u.last(svc, "Restart"); v != "on-failure" {
		add("Restart=on-failure is missing (got %q)", v)
	}
	dynamic, _ := u.last(svc, "DynamicUser")
	user, _ := u.last(svc, "User")
	if !unitBool(dynamic) && (user == "" || user == "root" || user == "0") {
		add("the service would run as root: set DynamicUser=yes or a dedicated User=")
	}
	state, _ := u.last(svc, "StateDirectory")
	if state != "groupgate" {
		add("StateDirectory=groupgate is missing (got %q)", state)
	} else if dir := filepath.Dir(cfg.StorePath); dir != "/var/lib/"+state {
		add("store_path %s is not in the StateDirectory /var/lib/%s", cfg.StorePath, state)
	}

	// ExecStart runs an absolute path with -config <absolute path>.
	start, _ := u.last(svc, "ExecStart")
	argv := strings.Fields(strings.TrimLeft(start, "@-:+!"))
	if len(argv) == 0 || !filepath.IsAbs(argv[0]) {
		add("ExecStart=%q: want an absolute path to the binary", start)
	}
	if configPath := configArg(argv); !filepath.IsAbs(configPath) {
		add("ExecStart=%q: want -config with an absolute path", start)
	}
	reload, _ := u.last(svc, "ExecReload")
	if f := strings.Fields(reload); len(f) != 3 || (f[0] != "/bin/kill" && f[0] != "/usr/bin/kill") || f[1] != "-HUP" || f[2] != "$MAINPID" {
		add("ExecReload=/bin/kill -HUP $MAINPID is missing (got %q): SIGHUP re-reads credential files", reload)
	}

	// Stopping waits for an upstream call in flight (shutdown_grace).
	stop, _ := u.last(svc, "TimeoutStopSec")
	if d, err := parseTimespan(stop); err != nil {
		add("TimeoutStopSec: %v", err)
	} else if d <= time.Duration(cfg.ShutdownGrace) {
		add("TimeoutStopSec=%s is not above shutdown_grace (%s): systemd would kill a graceful shutdown", stop, time.Duration(cfg.ShutdownGrace))
	}

	// Credentials: the unit loads exactly those the configuration names.
	var ids []string
	for _, v := range u.list(svc, "LoadCredential") {
		id, src, ok := strings.Cut(v, ":")
		if !ok || !filepath.IsAbs(src) {
			add("LoadCredential=%s: want ID:/absolute/source", v)
		}
		ids = append(ids, id)
	}
	var want []string
	for _, f := range secretFiles(cfg) {
		want = append(want, path.Base(f))
	}
	if !sameSet(ids, want) {
		slices.Sort(ids)
		slices.Sort(want)
		add("LoadCredential= IDs %v differ from the files the configuration reads in %s: %v", ids, credentialsDir, want)
	}
	for _, v := range u.list(svc, "Environment") {
		for _, assign := range strings.Fields(v) {
			if name, _, _ := strings.Cut(strings.Trim(assign, `"'`), "="); secretNameRE.MatchString(name) {
				add("Environment=%s looks like a secret: use LoadCredential=", name)
			}
		}
	}
	return problems
}

// configArg returns the value of -config (or --config) in argv.
func configArg(argv []string) string {
	for i, a := range argv {
		for _, name := range []string{"-config", "--config"} {
			if a == name && i+1 < len(argv) {
				return argv[i+1]
			}
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v
			}
		}
	}
	return ""
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b)) && len(a) == len(b)
}

func mustParseUnit(t *testing.T, src string) unitFile {
	t.Helper()
	u, err := parseUnit(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSystemdUnit(t *testing.T) {
	cfg := loadExample(t)
	u := mustParseUnit(t, readFile(t, unitPath))
	for _, p := range lintUnit(u, cfg) {
		t.Errorf("%s: %s", unitPath, p)
	}
	// The unit and the image run the same configuration file.
	start, _ := u.last("Service", "ExecStart")
	d := mustLintDockerfile(t)
	if got, want := configArg(strings.Fields(start)), configArg(d.Cmd); got != want {
		t.Errorf("the unit reads %s, the image %s: keep one path", got, want)
	}
}

// TestSystemdUnitLint shows the unit lint catches each mistake: every case
// breaks the real unit in one way.
func TestSystemdUnitLint(t *testing.T) {
	cfg := loadExample(t)
	runLintCases(t, readFile(t, unitPath), func(src string) []string {
		return lintUnit(mustParseUnit(t, src), cfg)
	}, []lintCase{
		{"no NoNewPrivileges", "NoNewPrivileges=yes", "NoNewPrivileges=no", "NoNewPrivileges"},
		{"ProtectSystem full", "ProtectSystem=strict", "ProtectSystem=full", "ProtectSystem=strict"},
		{"no ProtectHome", "ProtectHome=yes\n", "", "ProtectHome"},
		{"no PrivateTmp", "PrivateTmp=yes\n", "", "PrivateTmp"},
		{"capabilities", "CapabilityBoundingSet=\n", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n", "CapabilityBoundingSet"},
		{"address families", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK", "RestrictAddressFamilies"},
		{"syscall filter reset", "SystemCallFilter=~@privileged", "SystemCallFilter=", "@system-service"},
		{"restart", "Restart=on-failure", "Restart=no", "Restart=on-failure"},
		{"root", "DynamicUser=yes", "DynamicUser=no", "run as root"},
		{"no state dir", "StateDirectory=groupgate\n", "", "StateDirectory"},
		{"relative binary", "ExecStart=/usr/local/bin/groupgate", "ExecStart=groupgate", "absolute path to the binary"},
		{"no config", " -config /etc/groupgate/config.yaml", "", "-config"},
		{"reload", "ExecReload=/bin/kill -HUP $MAINPID", "ExecReload=/bin/true", "ExecReload"},
		{"short stop timeout", "TimeoutStopSec=30s", "TimeoutStopSec=5s", "not above shutdown_grace"},
		{"missing credential", "LoadCredential=kek:/etc/groupgate/credentials/kek\n", "", "LoadCredential= IDs"},
		{"secret in environment", "Type=exec", "Type=exec\nEnvironment=GROUPGATE_KEK=c2VjcmV0", "looks like a secret"},
	})
}

func TestParseTimespan(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30s": 30 * time.Second, "90": 90 * time.Second, "1min 30s": 90 * time.Second, "2min": 2 * time.Minute, "500ms": 500 * time.Millisecond,
	} {
		if got, err := parseTimespan(in); err != nil || got != want {
			t.Errorf("parseTimespan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "soon", "10 parsecs", "1min x"} {
		if _, err := parseTimespan(bad); err == nil {
			t.Errorf("parseTimespan(%q): want an error", bad)
		}
	}
}
