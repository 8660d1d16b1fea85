// Command splitthrottle rewrites Go source from the former package throttle
// to the packages it was split into (issue 12): queue (the operation model,
// the store contract and the queue's rules and order), dispatch (the
// dispatcher, its registry Dispatchers, outcomes, retry policy, endings, the
// settled hub) and pacing (the Gate). Every exported identifier of throttle
// is mapped; an identifier it does not know is an error, so nothing is left
// half-renamed.
//
//	go run ./internal/tools/splitthrottle DIR_OR_FILE...
//
// For each .go file (directories are walked) it replaces throttle.X and
// throttletest.X by their new qualified names, replaces the imports, and
// rewrites throttle.X and throttle/file.go in comments. It only renames, so
// running it again changes nothing. It exists for branches written before the
// split; once none is left it can be deleted.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

const module = "github.com/groupgate/groupgate/"

const (
	oldPath     = module + "throttle"
	oldTestPath = module + "throttle/throttletest"
)

// paths are the new packages by name.
var paths = map[string]string{
	"queue":     module + "queue",
	"queuetest": module + "queue/queuetest",
	"dispatch":  module + "dispatch",
	"pacing":    module + "pacing",
}

// target is where an identifier of throttle went.
type target struct{ pkg, name string }

// idents maps every exported identifier of package throttle (go doc -all
// ./throttle at f7c1f0d) to its new home.
var idents = map[string]target{}

func init() {
	same := func(pkg string, names ...string) {
		for _, n := range names {
			idents[n] = target{pkg, n}
		}
	}
	same("queue",
		// operation.go: the model
		"State", "Queued", "Running", "Succeeded", "Failed", "Cancelled",
		"ErrNotFound", "ErrEmpty", "ErrQueueFull", "ErrNotCancellable", "ErrNotRetryable",
		"ErrIdempotencyMismatch", "ErrReplay", "QueueFullError", "ReplayError",
		"Idempotency", "Operation", "Failure", "NewID", "NewIDAt",
		// the store contract and the rules over a transaction
		"Store", "IdempotencyRecord", "CheckIdempotency", "CheckEnqueue",
		"EnqueueIn", "QueueIn", "RecordIn", "SettleIn", "RequeueIn",
		// limits and order (fairness)
		"Depth", "Limits", "NextProject", "Position", "RetryAfter")
	idents["QueueTx"] = target{"queue", "Tx"}
	same("pacing", "Gate", "NewGate", "Delay")
	same("dispatch",
		"Handler", "HandlerFunc", "Background", "Dispatcher", "NewDispatcher", "Status",
		"Settled", "Endings", "RetryPolicy", "DefaultMaxDuration",
		"Outcome", "OutcomeKind", "Done", "Fail", "Retry", "Continue")
	idents["DispatcherConfig"] = target{"dispatch", "Config"}
	idents["Queue"] = target{"dispatch", "Dispatchers"}
	idents["NewQueue"] = target{"dispatch", "NewDispatchers"}
}

// files maps the files of throttle to where their contents went, for
// comments that name them.
var files = map[string]string{
	"operation.go":  "queue/operation.go",
	"queuetx.go":    "queue/tx.go",
	"schedule.go":   "queue/order.go",
	"dispatcher.go": "dispatch/dispatcher.go",
	"endings.go":    "dispatch/endings.go",
	"retry.go":      "dispatch/retry.go",
	"settled.go":    "dispatch/settled.go",
	"gate.go":       "pacing/gate.go",
	"doc.go":        "queue/doc.go",
}

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: splitthrottle DIR_OR_FILE...")
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	failed := false
	for _, root := range flag.Args() {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if n := d.Name(); path != root && (n == "vendor" || n == "testdata" || strings.HasPrefix(n, ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.Contains(filepath.ToSlash(path), "internal/tools/splitthrottle/") {
				return nil // this tool's own source names throttle on purpose
			}
			changed, err := rewriteFile(path)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
				failed = true
				return nil
			}
			if changed {
				fmt.Println("rewrote", path)
			}
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

type edit struct {
	start, end int
	text       string
}

func rewriteFile(path string) (bool, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	out, err := rewrite(path, src)
	if err != nil || bytes.Equal(out, src) {
		return false, err
	}
	return true, os.WriteFile(path, out, 0o644)
}

var (
	commentIdent     = regexp.MustCompile(`\bthrottle\.([A-Z]\w*)`)
	commentFile      = regexp.MustCompile(`\bthrottle/(\w+\.go)\b`)
	throttletestWord = regexp.MustCompile(`\bthrottletest\b`)
	packageThrottle  = regexp.MustCompile(`\bpackage throttle\b`)
	// commentLeft finds what still names the package (not the verb).
	commentLeft = regexp.MustCompile("\\bthrottle[./]|\\bthrottletest\\b|`throttle`|package throttle\\b|throttle's")
)

// rewrite returns src rewritten; path is for messages.
func rewrite(path string, src []byte) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	off := func(p token.Pos) int { return fset.Position(p).Offset }
	var edits []edit

	// Which imports of the old packages, under which local names.
	local := map[string]string{} // local name -> old import path
	var oldSpecs []*ast.ImportSpec
	have := map[string]bool{} // import paths already present
	for _, s := range f.Imports {
		p := strings.Trim(s.Path.Value, `"`)
		have[p] = true
		if p != oldPath && p != oldTestPath {
			continue
		}
		name := filepath.Base(p)
		if s.Name != nil {
			name = s.Name.Name
		}
		if name == "_" || name == "." {
			return nil, fmt.Errorf("import %s as %s: rewrite it by hand", p, name)
		}
		local[name] = p
		oldSpecs = append(oldSpecs, s)
	}

	need := map[string]bool{}
	var unknown []string
	if len(local) > 0 {
		alias := aliases(f)
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			switch local[x.Name] {
			case oldPath:
				t, ok := idents[sel.Sel.Name]
				if !ok {
					unknown = append(unknown, fmt.Sprintf("%s: throttle.%s", fset.Position(sel.Pos()), sel.Sel.Name))
					return false
				}
				need[t.pkg] = true
				edits = append(edits, edit{off(sel.Pos()), off(sel.End()), alias[t.pkg] + "." + t.name})
				return false
			case oldTestPath:
				need["queuetest"] = true
				edits = append(edits, edit{off(sel.Pos()), off(sel.End()), alias["queuetest"] + "." + sel.Sel.Name})
				return false
			}
			return true
		})
		if len(unknown) > 0 {
			return nil, fmt.Errorf("identifiers with no new home:\n\t%s", strings.Join(unknown, "\n\t"))
		}
		// The imports: the first old spec becomes the new ones, the others go.
		var lines []string
		for _, pkg := range sortedKeys(need) {
			if have[paths[pkg]] {
				continue
			}
			line := fmt.Sprintf("%q", paths[pkg])
			if alias[pkg] != pkg {
				line = alias[pkg] + " " + line
			}
			lines = append(lines, line)
		}
		for i, s := range oldSpecs {
			start, end := off(s.Pos()), off(s.End())
			text := ""
			if i == 0 {
				text = strings.Join(lines, "\n")
			}
			if d := declOf(f, s); d != nil && !d.Lparen.IsValid() {
				// import "…/throttle" alone: make it a block.
				start, end = off(d.Pos()), off(d.End())
				text = "import (\n" + text + "\n)"
				if len(lines) == 0 {
					text = ""
				}
			}
			edits = append(edits, edit{start, end, text})
		}
	}

	// Comments.
	for _, g := range f.Comments {
		for _, c := range g.List {
			text := commentFile.ReplaceAllStringFunc(c.Text, func(m string) string {
				if to, ok := files[m[len("throttle/"):]]; ok {
					return to
				}
				return m
			})
			text = strings.ReplaceAll(text, "throttle/throttletest", "queue/queuetest")
			text = throttletestWord.ReplaceAllString(text, "queuetest")
			// The operation model and its errors stayed together in queue.
			text = packageThrottle.ReplaceAllString(text, "package queue")
			text = commentIdent.ReplaceAllStringFunc(text, func(m string) string {
				if t, ok := idents[m[len("throttle."):]]; ok {
					return t.pkg + "." + t.name
				}
				fmt.Fprintf(os.Stderr, "%s: comment names %s, left as it is\n", fset.Position(c.Pos()), m)
				return m
			})
			if text != c.Text {
				edits = append(edits, edit{off(c.Pos()), off(c.End()), text})
			}
			if commentLeft.MatchString(text) {
				fmt.Fprintf(os.Stderr, "%s: comment still says throttle; reword it by hand\n", fset.Position(c.Pos()))
			}
		}
	}
	if len(edits) == 0 {
		return src, nil
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start > edits[j].start })
	out := append([]byte(nil), src...)
	for _, e := range edits {
		out = append(out[:e.start:e.start], append([]byte(e.text), out[e.end:]...)...)
	}
	formatted, err := format.Source(out)
	if err != nil {
		return nil, fmt.Errorf("rewritten source does not format: %w", err)
	}
	return formatted, nil
}

// aliases returns the local name to use for each new package in f: its own
// name, or name+"pkg" when f already uses the name for something else (a
// variable, a parameter, a function), which would shadow the import.
func aliases(f *ast.File) map[string]string {
	taken := map[string]bool{}
	skip := map[*ast.Ident]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			skip[n.Sel] = true
		case *ast.StructType:
			for _, fl := range n.Fields.List {
				for _, id := range fl.Names {
					skip[id] = true
				}
			}
		case *ast.InterfaceType:
			for _, fl := range n.Methods.List {
				for _, id := range fl.Names {
					skip[id] = true
				}
			}
		case *ast.CompositeLit:
			for _, e := range n.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok {
					if id, ok := kv.Key.(*ast.Ident); ok {
						skip[id] = true
					}
				}
			}
		case *ast.FuncDecl:
			if n.Recv != nil {
				skip[n.Name] = true // a method name does not shadow
			}
		case *ast.ImportSpec:
			return false
		}
		return true
	})
	ast.Inspect(f, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && !skip[id] {
			taken[id.Name] = true
		}
		return true
	})
	taken[f.Name.Name] = false // the package clause
	alias := map[string]string{}
	for pkg := range paths {
		alias[pkg] = pkg
		if taken[pkg] {
			alias[pkg] = pkg + "pkg"
		}
	}
	return alias
}

func declOf(f *ast.File, s *ast.ImportSpec) *ast.GenDecl {
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT {
			for _, sp := range g.Specs {
				if sp == s {
					return g
				}
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
