//go:build unix

package server_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/groupgate/groupgate"
)

// TestDocsBrowser loads /docs in a real headless Chromium and checks that
// Swagger UI rendered every operation of openapi.yaml, offline: every request
// the browser makes goes through a recording proxy that forwards only to the
// gateway, so a page that reaches for a CDN fails the test. A second run
// takes a screenshot; UPDATE_SCREENSHOT=1 copies it to docs/docs-page.png.
//
// It is skipped when Chromium is not installed, except under CI (env CI set),
// where scripts/install-test-deps.sh must have installed Debian's chromium.
func TestDocsBrowser(t *testing.T) {
	bin := needChromium(t)
	g := startGateway(t, gatewayOptions{})
	gw, err := url.Parse(g.base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startEgressProxy(t, gw.Host)
	docsURL := g.base + "/docs"

	// Both runs at once: each is a separate browser with its own profile.
	var (
		wg         sync.WaitGroup
		dom        []byte
		domErr     error
		shot       = filepath.Join(t.TempDir(), "docs.png")
		shotErr    error
		start      = time.Now()
		domTook    time.Duration
		shotTook   time.Duration
		chromeArgs = func(extra ...string) []string {
			return append([]string{
				"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
				"--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--disable-dev-shm-usage", "--hide-scrollbars",
				"--user-data-dir=" + t.TempDir(),
				"--proxy-server=" + proxy.url, "--proxy-bypass-list=<-loopback>",
				"--virtual-time-budget=15000",
			}, extra...)
		}
	)
	wg.Go(func() {
		dom, domErr = runChromium(bin, chromeArgs("--dump-dom", docsURL)...)
		domTook = time.Since(start)
	})
	wg.Go(func() {
		_, shotErr = runChromium(bin, chromeArgs("--screenshot="+shot, "--window-size=1280,2000", docsURL)...)
		shotTook = time.Since(start)
	})
	wg.Wait()
	t.Logf("chromium: DOM dump %v, screenshot %v", domTook.Round(time.Millisecond), shotTook.Round(time.Millisecond))

	if own := proxy.browserOwn(); len(own) > 0 {
		t.Logf("refused Chromium's own background requests (not the page's): %s", strings.Join(own, ", "))
	}
	if bad := proxy.refused(); len(bad) > 0 {
		t.Errorf("the docs page must work offline, but it tried to reach: %s", strings.Join(bad, ", "))
	}
	if domErr != nil {
		t.Fatalf("chromium --dump-dom: %v", domErr)
	}
	checkDocsDOM(t, dom)
	if shotErr != nil {
		t.Fatalf("chromium --screenshot: %v", shotErr)
	}
	checkScreenshot(t, shot)
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		b, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "docs-page.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote docs/docs-page.png (%d bytes)", len(b))
	}
}

// needChromium returns the path of Chromium, skipping t when it is not
// installed, except under CI (env CI set), where
// scripts/install-test-deps.sh must have installed Debian's chromium.
func needChromium(t *testing.T) string {
	t.Helper()
	bin := findChromium()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium not found, but CI is set: scripts/install-test-deps.sh should have installed Debian's chromium")
		}
		t.Skip("chromium not found (chromium, chromium-browser or /usr/bin/chromium); install Debian's chromium to run the browser test")
	}
	return bin
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if st, err := os.Stat("/usr/bin/chromium"); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return "/usr/bin/chromium"
	}
	return ""
}

// runChromium runs one headless browser and returns its stdout; on failure
// the error carries the tail of its stderr. The whole process group is killed
// when the minute is up, so no renderer outlives the test.
func runChromium(bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after 60s: %w", err)
	}
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("%w\nstderr:\n%s", err, tail(stderr.Bytes(), 2000))
	}
	return stdout.Bytes(), nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// egressProxy is the browser's HTTP proxy for every URL, loopback included.
// It forwards requests for the gateway and refuses and records all others.
type egressProxy struct {
	url string
	mu  sync.Mutex
	bad []string // from the page
	own []string // Chromium's own services
}

// chromiumOwnHosts are the services Chromium itself calls even with
// --disable-background-networking (network time, component updates, sign-in).
// They are refused like every other host but are not the page's doing.
// CDNs (ajax.googleapis.com, fonts.googleapis.com, ...) are not among them.
var chromiumOwnHosts = []string{
	"clients2.google.com", "update.googleapis.com", "accounts.google.com",
	"redirector.gvt1.com", "optimizationguide-pa.googleapis.com", "safebrowsing.googleapis.com",
}

func startEgressProxy(t *testing.T, allowedHost string) *egressProxy {
	t.Helper()
	p := &egressProxy{}
	forward := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Scheme, pr.Out.URL.Host = "http", allowedHost
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect || r.URL.Host != allowedHost {
			host, target := r.URL.Hostname(), r.URL.String()
			if r.Method == http.MethodConnect { // https: only the host is known
				host, _, _ = net.SplitHostPort(r.Host)
				target = r.Host
			}
			p.mu.Lock()
			if slices.Contains(chromiumOwnHosts, host) {
				p.own = append(p.own, r.Method+" "+host)
			} else {
				p.bad = append(p.bad, r.Method+" "+target)
			}
			p.mu.Unlock()
			http.Error(w, "offline: only the gateway may be reached", http.StatusForbidden)
			return
		}
		forward.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	p.url = "http://" + ln.Addr().String()
	return p
}

func (p *egressProxy) refused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.bad)
}

func (p *egressProxy) browserOwn() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Compact(slices.Sorted(slices.Values(p.own)))
}

// element is a start tag of the DOM Chromium serialised: it writes every
// attribute value in double quotes with '"' escaped, so a pattern suffices.
type element struct {
	tag   string
	attrs map[string]string
}

var (
	startTagRE = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s"'>/=]+(?:="[^"]*")?)*)\s*/?>`)
	attrRE     = regexp.MustCompile(`([^\s"'>/=]+)(?:="([^"]*)")?`)
	anyTagRE   = regexp.MustCompile(`(?s)<script.*?</script>|<style.*?</style>|<[^>]*>`)
)

func parseElements(dom []byte) []element {
	var els []element
	for _, m := range startTagRE.FindAllSubmatch(dom, -1) {
		el := element{tag: strings.ToLower(string(m[1])), attrs: map[string]string{}}
		for _, a := range attrRE.FindAllSubmatch(m[2], -1) {
			el.attrs[strings.ToLower(string(a[1]))] = html.UnescapeString(string(a[2]))
		}
		els = append(els, el)
	}
	return els
}

func (e element) hasClass(c string) bool { return slices.Contains(strings.Fields(e.attrs["class"]), c) }

// visibleText is the DOM's text without tags, scripts and styles, with
// whitespace collapsed.
func visibleText(dom []byte) string {
	s := strings.ReplaceAll(string(dom), "<wbr>", "") // Swagger UI breaks paths with <wbr>
	return strings.Join(strings.Fields(html.UnescapeString(anyTagRE.ReplaceAllString(s, " "))), " ")
}

// checkDocsDOM asserts that Swagger UI rendered the contract: the title, and
// an operation block with the right method, path and summary for every
// operation in openapi.yaml.
func checkDocsDOM(t *testing.T, dom []byte) {
	t.Helper()
	if len(dom) == 0 {
		t.Fatal("chromium dumped an empty DOM")
	}
	els := parseElements(dom)
	text := visibleText(dom)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
	}
	for _, bad := range []string{"Failed to load API definition", "Fetch error", "Could not render", "Unable to render this definition"} {
		if strings.Contains(text, bad) {
			fail("docs page shows %q", bad)
		}
	}
	for _, e := range els {
		if e.hasClass("errors-wrapper") {
			fail("Swagger UI shows an errors panel: the contract has problems it could not resolve")
			break
		}
	}
	var titled bool
	for _, e := range els {
		if e.tag == "h2" && e.hasClass("title") {
			titled = true
		}
	}
	if !titled || !strings.Contains(text, "groupgate: TechPass group gateway") {
		fail("info title %q not rendered", "groupgate: TechPass group gateway")
	}
	for _, want := range []string{"Create a group", "/v1/tenants/{tenant}/projects/{project}/groups"} {
		if !strings.Contains(text, want) {
			fail("docs page does not show %q", want)
		}
	}

	// The operation blocks Swagger UI rendered, by operationId. Its block id
	// is "operations-<tag>-<operationId>" and its class "opblock opblock-<method>".
	blocks := map[string]string{} // block id -> method
	var paths []string
	for _, e := range els {
		if e.hasClass("opblock") {
			id := e.attrs["id"]
			for _, c := range strings.Fields(e.attrs["class"]) {
				if m, ok := strings.CutPrefix(c, "opblock-"); ok && !strings.Contains(m, "-") && m != "tag" && m != "deprecated" {
					blocks[id] = m
				}
			}
		}
		if p, ok := e.attrs["data-path"]; ok {
			paths = append(paths, p)
		}
	}
	if len(blocks) == 0 {
		t.Fatalf("no operation rendered (no .opblock elements); page text: %.3000s", text)
	}
	doc, err := openapi3.NewLoader().LoadFromData(groupgate.OpenAPISpec())
	if err != nil {
		t.Fatal(err)
	}
	var ops int
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops++
			tag := "default"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			id := "operations-" + strings.ReplaceAll(tag, " ", "_") + "-" + op.OperationID
			got, ok := blocks[id]
			switch {
			case !ok:
				fail("operation %s (%s %s) not rendered: no .opblock#%s", op.OperationID, method, path, id)
			case got != strings.ToLower(method):
				fail("operation %s rendered as %s, want %s", op.OperationID, got, strings.ToLower(method))
			}
			if !slices.Contains(paths, path) {
				fail("path %s of %s not rendered", path, op.OperationID)
			}
			if op.Summary != "" && !strings.Contains(text, op.Summary) {
				fail("summary %q of %s not rendered", op.Summary, op.OperationID)
			}
		}
	}
	if ops < 5 || len(blocks) != ops {
		fail("rendered %d operation blocks, the contract has %d operations", len(blocks), ops)
	}
	if t.Failed() {
		t.Logf("dumped DOM (%d bytes), text: %.3000s", len(dom), text)
	}
}

// checkScreenshot asserts the screenshot is a real PNG of the rendered page:
// larger than 800x600, not blank, and showing Swagger UI's coloured method
// badges (GET, POST, DELETE), which exist only once operations render.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() <= 800 || b.Dy() <= 600 {
		t.Fatalf("screenshot is %dx%d, want more than 800x600", b.Dx(), b.Dy())
	}
	badges := map[string]color.RGBA{
		"GET":    {0x61, 0xaf, 0xfe, 0xff},
		"POST":   {0x49, 0xcc, 0x90, 0xff},
		"DELETE": {0xf9, 0x3e, 0x3e, 0xff},
	}
	counts := map[string]int{}
	colours := map[color.RGBA]struct{}{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			if len(colours) < 1000 {
				colours[c] = struct{}{}
			}
			for name, want := range badges {
				if near(c, want) {
					counts[name]++
				}
			}
		}
	}
	if len(colours) < 50 {
		t.Errorf("screenshot has only %d colours: blank or unrendered page", len(colours))
	}
	for name := range badges {
		// A badge is about 80x30 pixels; several of each are on the page.
		if counts[name] < 1000 {
			t.Errorf("screenshot shows %d pixels of the %s badge colour; want the operations rendered", counts[name], name)
		}
	}
	if t.Failed() {
		keep := filepath.Join(os.TempDir(), "groupgate-docs-failed.png")
		if b, err := os.ReadFile(path); err == nil && os.WriteFile(keep, b, 0o644) == nil {
			t.Logf("copied to %s", keep)
		}
	}
}

func near(a, b color.RGBA) bool {
	d := func(x, y uint8) int { return max(int(x)-int(y), int(y)-int(x)) }
	return d(a.R, b.R) <= 8 && d(a.G, b.G) <= 8 && d(a.B, b.B) <= 8
}
