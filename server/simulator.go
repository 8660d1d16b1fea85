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
	"time"

	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// embeddedSimulator is the built-in TechPass simulator, served on its own
// loopback listener so the real HTTP client, token flow and pacing are used
// exactly as against TechPass.
type embeddedSimulator struct {
	sim *techpasssim.Simulator
	srv *http.Server
	url string
}

// startSimulator starts the simulator if any tenant has no upstream, gives
// each such tenant fresh credentials (written to 0600 files, read back by
// the client like any secret manager's files) and points the tenant at it.
func startSimulator(cfg *Config, logger *slog.Logger) (*embeddedSimulator, error) {
	var users []int
	for i, t := range cfg.Tenants {
		if t.TechPass.UsesSimulator() {
			users = append(users, i)
		}
	}
	if len(users) == 0 {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Simulator.Listen)
	if err != nil {
		return nil, fmt.Errorf("simulator: listen on %s: %w", cfg.Simulator.Listen, err)
	}
	es := &embeddedSimulator{url: "http://" + ln.Addr().String()}
	es.sim = techpasssim.New(techpasssim.Config{
		Interval:   time.Duration(cfg.Interval),
		GroupLimit: cfg.GroupLimit,
		Logger:     logger.With("component", "techpass-simulator"),
	})
	dir := cfg.simulatorSecretsDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("simulator: create secrets directory: %w", err)
	}
	for _, i := range users {
		t := &cfg.Tenants[i]
		ns := techpasssim.Namespace{
			Name: t.Name, DirectoryID: randomHex(16), ClientID: randomHex(16),
			ClientSecret: randomHex(32), APIKeys: []string{randomHex(32)},
			Interval: time.Duration(t.Interval), GroupLimit: t.GroupLimit,
		}
		secretFile := filepath.Join(dir, t.Name+".client-secret")
		keyFile := filepath.Join(dir, t.Name+".api-key")
		err := errors.Join(
			os.WriteFile(secretFile, []byte(ns.ClientSecret+"\n"), 0o600),
			os.WriteFile(keyFile, []byte(ns.APIKeys[0]+"\n"), 0o600),
			es.sim.AddNamespace(ns),
		)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("simulator: set up namespace %s: %w", t.Name, err)
		}
		t.TechPass = TechPassConfig{
			APIURL: es.url, TokenURL: techpass.TokenURL(es.url, ns.DirectoryID), ClientID: ns.ClientID,
			ClientSecretFile: secretFile, APIKeyFile: keyFile,
		}
		logger.Warn("no TechPass upstream configured for tenant: using the built-in TechPass simulator, not the real TechPass",
			"tenant", t.Name, "simulator", es.url)
	}
	es.srv = &http.Server{Handler: es.sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := es.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("simulator stopped", "err", err)
		}
	}()
	return es, nil
}

func (es *embeddedSimulator) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = es.srv.Shutdown(ctx)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
