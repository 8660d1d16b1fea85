package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/internal/testkit"
	"github.com/groupgate/groupgate/tenants"
)

// benchListGroups is how many groups the listed project holds.
const benchListGroups = 20

// BenchmarkList compares the gateway's cached group list (GET
// /v1/tenants/{t}/projects/{p}/groups: the whole middleware chain, a key
// check, one small bbolt read and the cached bytes) with a bare Echo
// handler returning the same bytes with c.JSONBlob. Both are driven alike:
// over real HTTP on loopback with one shared client, and in-process through
// ServeHTTP, with 8 concurrent callers. The bare-echo results carry the
// ratio cached/bare of throughputs (target >= 0.8) as "cached/bare".
func BenchmarkList(b *testing.B) {
	srv, key, body := benchListServer(b)
	path := "/v1/tenants/SHIP/projects/MOH/groups"

	bare := echo.New()
	bare.HideBanner, bare.HidePort = true, true
	bare.GET("/v1/tenants/:tenant/projects/:project/groups", func(c echo.Context) error {
		return c.JSONBlob(http.StatusOK, body)
	})
	bareSrv := httptest.NewServer(bare)
	b.Cleanup(bareSrv.Close)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	b.Cleanup(client.CloseIdleConnections)

	overHTTP := func(base string) func(*testing.B) {
		return func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				req, _ := http.NewRequest(http.MethodGet, base+path, nil)
				req.Header.Set("Authorization", "Bearer "+key)
				var buf bytes.Buffer
				for pb.Next() {
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					buf.Reset()
					_, err = buf.ReadFrom(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(buf.Bytes(), body) {
						b.Errorf("GET %s: status %d, err %v", base+path, resp.StatusCode, err)
						return
					}
				}
			})
		}
	}
	inProcess := func(h http.Handler) func(*testing.B) {
		return func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.Header.Set("Authorization", "Bearer "+key)
				w := &discardWriter{header: http.Header{}}
				for pb.Next() {
					w.reset()
					h.ServeHTTP(w, req)
					if w.status != http.StatusOK || w.n != len(body) {
						b.Errorf("GET %s: status %d, %d bytes", path, w.status, w.n)
						return
					}
				}
			})
		}
	}
	pair := func(name string, cached, bare func(*testing.B)) {
		var cachedNs float64
		b.Run(name+"/cached", func(b *testing.B) {
			cached(b)
			cachedNs = float64(b.Elapsed()) / float64(b.N)
		})
		b.Run(name+"/bare-echo", func(b *testing.B) {
			bare(b)
			if bareNs := float64(b.Elapsed()) / float64(b.N); cachedNs > 0 {
				b.ReportMetric(bareNs/cachedNs, "cached/bare")
			}
		})
	}
	pair("http", overHTTP(srv.URL()), overHTTP(bareSrv.URL))
	pair("inproc", inProcess(srv.http.Handler), inProcess(bare))
}

// discardWriter is an http.ResponseWriter that keeps the status and counts
// the body's bytes, so an in-process benchmark measures the handler rather
// than a recorder's buffers.
type discardWriter struct {
	header http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

func (w *discardWriter) reset() {
	clear(w.header)
	w.status, w.n = 0, 0
}

// benchListServer runs the real server (embedded simulator, 10 ms interval)
// with one project holding benchListGroups active groups, and returns it,
// the project's key, and its list as the server encodes it.
func benchListServer(b *testing.B) (*Server, string, []byte) {
	b.Helper()
	cfg := config.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AllowHTTP = true // a loopback benchmark
	cfg.StorePath = filepath.Join(b.TempDir(), "groupgate.db")
	cfg.Interval = config.Duration(10 * time.Millisecond)
	cfg.PaceGuard = config.Duration(5 * time.Millisecond)
	// The per-credential rate limit would refuse the load itself: make it
	// unreachable. Its check still runs on every request.
	cfg.RateLimit = config.RateLimitConfig{PerSecond: 1e9, Burst: 1 << 30}
	key, stored := tenants.NewKey()
	cfg.Tenants = []config.TenantConfig{{Name: "SHIP", Projects: []config.ProjectConfig{{
		Name: "MOH", Keys: []config.KeyConfig{{ID: stored.ID, Hash: tenants.HashString(stored.Hash)}},
	}}}}
	// Production's log level and format; the lines are encoded, then dropped.
	srv, err := New(cfg, Options{Logger: NewLogger(cfg, io.Discard)})
	if err != nil {
		b.Fatal(err)
	}
	testkit.Serve(b, srv.Run)

	url := srv.URL() + "/v1/tenants/SHIP/projects/MOH/groups"
	send := func(method string, body []byte) (int, []byte) {
		b.Helper()
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err != nil {
			b.Fatal(err)
		}
		return resp.StatusCode, out
	}
	for i := range benchListGroups {
		in := fmt.Sprintf(`{"name":"team-%02d","description":"Team %d of the project"}`, i, i)
		if status, out := send(http.MethodPost, []byte(in)); status != http.StatusAccepted {
			b.Fatalf("create: %d %s", status, out)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, out := send(http.MethodGet, nil)
		if status != http.StatusOK {
			b.Fatalf("list: %d %s", status, out)
		}
		var list struct {
			Groups []struct {
				State string `json:"state"`
			} `json:"groups"`
		}
		if err := json.Unmarshal(out, &list); err != nil {
			b.Fatal(err)
		}
		active := 0
		for _, g := range list.Groups {
			if g.State == "active" {
				active++
			}
		}
		if active == benchListGroups {
			return srv, key, out
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d groups active after 30s: %s", active, benchListGroups, strings.TrimSpace(string(out)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
