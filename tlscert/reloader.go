// Package tlscert serves the API's TLS certificate and key from their PEM
// files and loads them again when the files change, so a renewed certificate
// is used without a restart.
package tlscert

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Reloader serves the certificate in certFile and keyFile and loads it
// again when either file changes (checked at most every checkEvery, at a
// handshake), so a renewed certificate is used without a restart. A new
// pair that does not load leaves the previous one in use and is logged.
// It is safe for concurrent use.
type Reloader struct {
	certFile, keyFile string
	checkEvery        time.Duration
	logger            *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

// NewReloader loads the pair in certFile and keyFile; logger reports
// reloads and pairs that did not load.
func NewReloader(certFile, keyFile string, logger *slog.Logger) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, checkEvery: 10 * time.Second, logger: logger}
	if err := r.reload(time.Now()); err != nil {
		return nil, err
	}
	return r, nil
}

// stampOf identifies the files' current versions.
func (r *Reloader) stampOf() (string, error) {
	var stamp string
	for _, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		stamp += fmt.Sprintf("%s:%d:%d;", f, fi.ModTime().UnixNano(), fi.Size())
	}
	return stamp, nil
}

// reload loads the pair if the files changed since the last load.
func (r *Reloader) reload(now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked = now
	stamp, err := r.stampOf()
	if err != nil {
		return err
	}
	if stamp == r.stamp && r.cert != nil {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: load certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	if r.cert != nil {
		r.logger.Info("TLS certificate reloaded", "cert_file", r.certFile)
	}
	r.cert, r.stamp = &cert, stamp
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *Reloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := time.Now()
	r.mu.Lock()
	due := now.Sub(r.checked) >= r.checkEvery
	r.mu.Unlock()
	if due {
		if err := r.reload(now); err != nil {
			r.logger.Error("TLS certificate not reloaded; the previous one stays in use", "err", err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert, nil
}

// TLSConfig returns the server's TLS settings: TLS 1.2 or later, the
// certificate from the reloader.
func (r *Reloader) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}
}
