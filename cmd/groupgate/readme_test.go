package main

// TestREADME runs README.md's shell walkthrough the way a reader would paste
// it after `make run`, so the README cannot drift from the service.
//
// The convention, for whoever adds to the README:
//   - Every ```sh block is run, in the order of the file, in ONE bash shell
//     (variables set in one block are seen by the next) with
//     `set -euo pipefail`, from a fresh temporary directory that holds the
//     freshly built binary at ./bin/groupgate and the demo's store in .data/
//     (what `make run` uses). Blocks not meant to run are ```text (or any
//     other language).
//   - The server is `./bin/groupgate -demo -log-format text`, as `make run`
//     starts it, except that it listens on a free port: the README's
//     http://127.0.0.1:8080 is replaced by the address of a proxy that
//     validates every exchange against openapi.yaml (internal/apitest).
//   - The values the reader copies from what `make run` printed are filled
//     in: the line `KEY=gk_...` gets the demo API key and `OP=gk_...` the
//     operator key. Anything else the reader needs must be taken from earlier
//     answers by the README itself (e.g. `ID=$(curl ... | jq -r .id)`).
//   - curl is wrapped: an answer of 400 or more fails the block, unless the
//     comment line just before the command says "(expect NNN)", in which
//     case exactly that status is required. So do not pass -f, -o or -w.
//     Each curl has 60 s, the walkthrough readmeDeadline.
//   - The environment is PATH, HOME (an empty directory: no ~/.curlrc),
//     TMPDIR (the temporary directory) and NO_PROXY, nothing else.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/apitest"
)

// readmeAddress is the address the README's commands use, as under make run.
const readmeAddress = "http://127.0.0.1:8080"

// curlWrapper is defined in the shell before the README's blocks run.
const curlWrapper = `
curl() {
  local want=${GG_EXPECT:-} dir code
  unset GG_EXPECT
  dir=$(mktemp -d)
  if ! command curl -q --max-time 60 -o "$dir/body" -w '%{stderr}%{http_code}' "$@" >"$dir/out" 2>"$dir/err"; then
    cat "$dir/out" "$dir/body" 2>/dev/null; cat "$dir/err" >&2; rm -rf "$dir"; return 1
  fi
  code=$(tail -c 3 "$dir/err"); head -c -3 "$dir/err" >&2
  cat "$dir/out" "$dir/body"; echo
  rm -rf "$dir"
  echo "  [HTTP $code]" >&2
  if [ -n "$want" ]; then
    [ "$code" = "$want" ] || { echo "README test: status $code, but the README says $want" >&2; return 1; }
  elif [ "$code" -ge 400 ]; then
    echo "README test: status $code" >&2; return 1
  fi
}
trap 'echo "README test: failed: $BASH_COMMAND" >&2' ERR
`

var (
	expectComment = regexp.MustCompile(`^\s*#.*\(expect (\d{3})\)`)
	placeholder   = regexp.MustCompile(`^(\w+)=gk_\.\.\.`)
)

// shellBlocks returns the ```sh blocks of a Markdown document, in order.
func shellBlocks(t *testing.T, markdown string) []string {
	t.Helper()
	var blocks []string
	var cur *strings.Builder
	sc := bufio.NewScanner(strings.NewReader(markdown))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```sh":
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if cur != nil {
		t.Fatal("README.md: a ```sh block is not closed")
	}
	return blocks
}

// fill prepares one block for the shell: placeholders become the values
// make run printed, the README's address becomes api, and "(expect NNN)"
// comments set the status the next curl must answer.
func fill(t *testing.T, block string, values map[string]string, api string) string {
	t.Helper()
	var out strings.Builder
	for _, line := range strings.Split(block, "\n") {
		if m := placeholder.FindStringSubmatch(line); m != nil {
			v, ok := values[m[1]]
			if !ok {
				t.Fatalf("README.md: placeholder %s=gk_... is not one the test fills (%v)", m[1], keys(values))
			}
			line = m[1] + "=" + v
		}
		line = strings.ReplaceAll(line, readmeAddress, api)
		out.WriteString(line + "\n")
		if m := expectComment.FindStringSubmatch(line); m != nil {
			out.WriteString("GG_EXPECT=" + m[1] + "\n")
		}
	}
	return out.String()
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestREADME(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run the README (scripts/install-test-deps.sh installs it): %v", tool, err)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := shellBlocks(t, string(readme))
	if len(blocks) < 2 {
		t.Fatalf("README.md has %d sh blocks; the walkthrough is missing", len(blocks))
	}

	work := t.TempDir()
	if err := os.Mkdir(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(builtBinary(t), filepath.Join(work, "bin", "groupgate")); err != nil {
		t.Fatal(err)
	}
	env := readmeEnv(t, work)

	// The server, as make run starts it, on a free port.
	srv := exec.Command("./bin/groupgate", "-demo", "-log-format", "text", "-listen", "127.0.0.1:0")
	srv.Dir = work
	srv.Env = env
	banner, logs := startDemo(t, srv, 30*time.Second)

	// Every exchange goes through a proxy that checks it against
	// openapi.yaml.
	target, err := url.Parse(banner.base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = apitest.NewClient(t, http.DefaultTransport).Transport
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)

	values := map[string]string{"KEY": banner.key, "OP": banner.operator}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n" + curlWrapper)
	for i, b := range blocks {
		fmt.Fprintf(&script, "echo '=== README sh block %d' >&2\n", i+1)
		script.WriteString(fill(t, b, values, front.URL))
	}
	ctx, cancel := context.WithTimeout(context.Background(), readmeDeadline)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "-c", script.String())
	sh.Dir = work
	sh.Env = env
	ownGroup(sh)
	sh.Cancel = func() error { return killGroup(sh) } // bash and every curl it started
	sh.WaitDelay = 5 * time.Second
	out, err := sh.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the README walkthrough did not finish within %v\n--- its output:\n%s\n--- server log (tail):\n%s",
			readmeDeadline, out, tail(logs.String(), 40))
	}
	if err != nil {
		failed := len(blocks)
		if i := strings.LastIndex(string(out), "=== README sh block "); i >= 0 {
			_, _ = fmt.Sscanf(string(out[i:]), "=== README sh block %d", &failed)
		}
		t.Fatalf("README.md sh block %d failed: %v\n--- block %d:\n%s--- output of the walkthrough:\n%s\n--- server log (tail):\n%s",
			failed, err, failed, blocks[failed-1], out, tail(logs.String(), 40))
	}
	t.Logf("walkthrough output:\n%s", out)
}

// readmeDeadline bounds the whole walkthrough; each curl has 60 s.
const readmeDeadline = 5 * time.Minute

// readmeEnv is the whole environment of the server and the walkthrough:
// none of the developer's settings (GROUPGATE_*, a ~/.curlrc, proxies)
// reach them, and temporary files (mktemp) go to work, which the test
// removes.
func readmeEnv(t *testing.T, work string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + work,
		"NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1",
	}
}
