package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
	"github.com/groupgate/groupgate/tenants"
)

// embeddedSimulator is the built-in TechPass simulator, served on its own
// loopback listener so the real HTTP client, token flow and pacing are used
// exactly as against TechPass. Tenants without an upstream are registered on
// it when their runtime is built; their generated credentials are written to
// 0600 files in dir (config.SimulatorSecretsDir) and read back like any
// secret manager's files.
type embeddedSimulator struct {
	sim *techpasssim.Simulator
	srv *http.Server
	url string
	dir string
	// temporary is set when dir is the simulator's own temporary
	// directory, which close removes.
	temporary bool
	logger    *slog.Logger

	mu    sync.Mutex
	known map[string]tenants.TechPass
	// gateway is this server's base URL once it listens, for webhooks.
	gateway string
	retry   time.Duration
}

// simulatorFor returns the simulator settings of the tenant of st,
// starting the simulator and registering the tenant, with its interval and
// group limit, on first use.
func (s *Server) simulatorFor(st tenantSettings) (tenants.TechPass, error) {
	s.simOnce.Do(func() { s.sim, s.simErr = startSimulator(s.cfg, s.logger) })
	if s.simErr != nil {
		return tenants.TechPass{}, s.simErr
	}
	return s.sim.register(st.Tenant.Name, st.Interval, st.GroupLimit)
}

func startSimulator(cfg config.Config, logger *slog.Logger) (*embeddedSimulator, error) {
	ln, err := net.Listen("tcp", cfg.Simulator.Listen)
	if err != nil {
		return nil, fmt.Errorf("simulator: listen on %s: %w", cfg.Simulator.Listen, err)
	}
	dir, temporary := cfg.SimulatorSecretsDir(), false
	if dir == "" {
		// MkdirTemp makes it 0700.
		dir, err = os.MkdirTemp("", "groupgate-simulator-")
		temporary = true
	} else {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("simulator: create secrets directory: %w", err)
	}
	es := &embeddedSimulator{
		url: "http://" + ln.Addr().String(), dir: dir, temporary: temporary, logger: logger, known: map[string]tenants.TechPass{},
		retry: time.Duration(cfg.Simulator.WebhookRetry),
		sim: techpasssim.New(techpasssim.Config{
			Interval: time.Duration(cfg.Interval), GroupLimit: cfg.GroupLimit,
			Users:  techpasssim.DemoUsers(cfg.Simulator.Users),
			Logger: logger.With("component", "techpass-simulator"),
		}),
	}
	es.srv = &http.Server{Handler: es.sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := es.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("simulator stopped", "err", err)
		}
	}()
	return es, nil
}

// register gives tenant a namespace on the simulator (once per process).
func (es *embeddedSimulator) register(tenant string, interval time.Duration, groupLimit int) (tenants.TechPass, error) {
	es.mu.Lock()
	defer es.mu.Unlock()
	if tp, ok := es.known[tenant]; ok {
		return tp, nil
	}
	ns := techpasssim.Namespace{
		Name: tenant, DirectoryID: randomHex(16), ClientID: randomHex(16),
		ClientSecret: randomHex(32), APIKeys: []string{randomHex(32)},
		Interval: interval, GroupLimit: groupLimit,
	}
	secretFile := filepath.Join(es.dir, tenant+".client-secret")
	keyFile := filepath.Join(es.dir, tenant+".api-key")
	hookFile := filepath.Join(es.dir, tenant+".webhook-secret")
	err := errors.Join(
		os.WriteFile(secretFile, []byte(ns.ClientSecret+"\n"), 0o600),
		os.WriteFile(keyFile, []byte(ns.APIKeys[0]+"\n"), 0o600),
		os.WriteFile(hookFile, []byte(randomHex(32)+"\n"), 0o600),
		es.sim.AddNamespace(ns),
	)
	if err != nil {
		return tenants.TechPass{}, fmt.Errorf("simulator: set up namespace %s: %w", tenant, err)
	}
	tp := tenants.TechPass{
		APIURL: es.url, TokenURL: techpass.TokenURL(es.url, ns.DirectoryID), ClientID: ns.ClientID,
		ClientSecret:  tenants.Credential{Kind: tenants.CredentialFile, Ref: secretFile},
		APIKey:        tenants.Credential{Kind: tenants.CredentialFile, Ref: keyFile},
		WebhookSecret: tenants.Credential{Kind: tenants.CredentialFile, Ref: hookFile},
	}
	es.known[tenant] = tp
	if es.gateway != "" {
		es.setWebhook(tenant, tp)
	}
	es.logger.Warn("no TechPass upstream configured for tenant: using the built-in TechPass simulator, not the real TechPass",
		"tenant", tenant, "simulator", es.url)
	return tp, nil
}

// connectWebhooks points every namespace's webhook at the gateway at
// base, signed with the namespace's generated webhook secret.
func (es *embeddedSimulator) connectWebhooks(base string) {
	es.mu.Lock()
	defer es.mu.Unlock()
	es.gateway = base
	for name, tp := range es.known {
		es.setWebhook(name, tp)
	}
}

// setWebhook registers the webhook of namespace; call with es.mu held.
func (es *embeddedSimulator) setWebhook(namespace string, tp tenants.TechPass) {
	secret, err := os.ReadFile(tp.WebhookSecret.Ref)
	if err == nil {
		err = es.sim.SetWebhook(namespace, techpasssim.Webhook{
			URL:    es.gateway + "/v1/tenants/" + namespace + "/webhooks/techpass",
			Secret: strings.TrimSpace(string(secret)), RetryEvery: es.retry,
		})
	}
	if err != nil {
		es.logger.Warn("simulator: webhooks of the namespace not set up", "tenant", namespace, "err", err)
	}
}

func (es *embeddedSimulator) close() {
	es.sim.StopWebhooks()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = es.srv.Shutdown(ctx)
	if es.temporary {
		if err := os.RemoveAll(es.dir); err != nil {
			es.logger.Warn("simulator: remove the temporary secrets directory", "dir", es.dir, "err", err)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
