package testkit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testkit"
)

var t0 = time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)

func TestClock(t *testing.T) {
	c := testkit.NewClock(t0)
	now := c.Now // a func() time.Time, as code under test takes it
	if !now().Equal(t0) {
		t.Fatalf("Now = %v, want %v", now(), t0)
	}
	c.Advance(90 * time.Second)
	if want := t0.Add(90 * time.Second); !now().Equal(want) {
		t.Errorf("after Advance: %v, want %v", now(), want)
	}
	c.Set(t0.Add(-time.Hour))
	if want := t0.Add(-time.Hour); !now().Equal(want) {
		t.Errorf("after Set: %v, want %v", now(), want)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Advance(time.Millisecond)
				_ = c.Now()
			}
		}()
	}
	wg.Wait()
	if want := t0.Add(-time.Hour + 800*time.Millisecond); !now().Equal(want) {
		t.Errorf("after concurrent Advance: %v, want %v", now(), want)
	}
}

func TestShiftedClock(t *testing.T) {
	var c testkit.ShiftedClock
	if d := time.Since(c.Now()); d < 0 || d > time.Minute {
		t.Fatalf("unshifted clock is %v off the real one", d)
	}
	c.Advance(time.Hour)
	if d := time.Until(c.Now()); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("shifted by an hour, the clock is %v ahead", d)
	}
}

// recorder is a testing.TB that records Fatalf instead of stopping.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Fatalf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }

func TestEventually(t *testing.T) {
	calls := 0
	r := &recorder{TB: t}
	testkit.Eventually(r, time.Second, "the third call", func() bool { calls++; return calls == 3 })
	if r.failed != "" || calls != 3 {
		t.Errorf("a condition that holds on the third call: failed %q after %d calls", r.failed, calls)
	}
	start := time.Now()
	testkit.Eventually(r, 50*time.Millisecond, "never", func() bool { return false })
	if r.failed != "timed out after 50ms waiting for never" {
		t.Errorf("a condition that never holds: failed %q", r.failed)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("gave up after %v, before the deadline", took)
	}
}

func TestPoll(t *testing.T) {
	if !testkit.Poll(time.Second, time.Millisecond, func() bool { return true }) {
		t.Error("a condition that holds at once was not reported")
	}
	n := 0
	if testkit.Poll(20*time.Millisecond, 5*time.Millisecond, func() bool { n++; return false }) {
		t.Error("a condition that never holds was reported as held")
	}
	if n < 2 || n > 10 {
		t.Errorf("asked %d times in 20ms at 5ms intervals", n)
	}
}

func TestNewCertDefaults(t *testing.T) {
	c := testkit.NewCert(t, testkit.CertOptions{})
	if c.RSAKey() == nil || c.RSAKey().N.BitLen() != 2048 {
		t.Fatalf("default key %T, want RSA 2048", c.Key)
	}
	if c.Cert.Subject.CommonName != "groupgate test" || c.Cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("subject %q, key usage %v", c.Cert.Subject.CommonName, c.Cert.KeyUsage)
	}
	if now := time.Now(); !c.Cert.NotBefore.Before(now) || c.Cert.NotAfter.Before(now.Add(364*24*time.Hour)) {
		t.Errorf("valid %v to %v, want from before now for a year", c.Cert.NotBefore, c.Cert.NotAfter)
	}
	if err := c.Cert.CheckSignature(c.Cert.SignatureAlgorithm, c.Cert.RawTBSCertificate, c.Cert.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if _, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
		t.Errorf("CertPEM and KeyPEM (PKCS #8) are no pair: %v", err)
	}
	if _, err := tls.X509KeyPair(c.CertPEM, c.PKCS1KeyPEM(t)); err != nil {
		t.Errorf("CertPEM and PKCS1KeyPEM are no pair: %v", err)
	}
	if b, _ := pem.Decode(c.PKCS1KeyPEM(t)); b == nil || b.Type != "RSA PRIVATE KEY" {
		t.Errorf("PKCS1KeyPEM block %+v", b)
	}
	if d := testkit.NewCert(t, testkit.CertOptions{Key: c.Key}); d.Cert.SerialNumber.Cmp(c.Cert.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
}

func TestNewCertOptions(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notBefore, notAfter := t0.Add(-time.Hour), t0.Add(time.Hour)
	c := testkit.NewCert(t, testkit.CertOptions{
		CommonName: "idp", Key: key, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageCertSign, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	})
	if c.Key != key || c.RSAKey() != nil {
		t.Errorf("key %T, want the given ECDSA key", c.Key)
	}
	got := c.Cert
	if got.Subject.CommonName != "idp" || !got.NotBefore.Equal(notBefore) || !got.NotAfter.Equal(notAfter) ||
		got.KeyUsage != x509.KeyUsageCertSign || len(got.IPAddresses) != 1 || !got.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("certificate %+v does not follow the options", got)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	c.WriteFiles(t, certFile, keyFile)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !pair.Leaf.Equal(c.Cert) {
		t.Error("the written certificate is another")
	}
	for _, f := range []string{certFile, keyFile} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v", f, fi.Mode(), err)
		}
	}
}

func TestRunCases(t *testing.T) {
	var made, ran []int
	newStore := func(*testing.T) int { made = append(made, len(made)); return len(made) - 1 }
	record := func(_ *testing.T, s int) { ran = append(ran, s) }
	testkit.RunCases(t, newStore, []testkit.Case[int]{{Name: "A", Run: record}, {Name: "B", Run: record}, {Name: "C", Run: record}})
	if fmt.Sprint(ran) != "[0 1 2]" || len(made) != 3 {
		t.Errorf("cases ran on stores %v, want each on its own fresh store in order", ran)
	}
}

func TestServe(t *testing.T) {
	stopped := make(chan struct{})
	t.Run("stops at the end", func(t *testing.T) {
		testkit.Serve(t, func(ctx context.Context) error {
			<-ctx.Done()
			close(stopped)
			return nil
		})
	})
	select {
	case <-stopped:
	default:
		t.Fatal("the run was not stopped and awaited when its test ended")
	}
	r := &errRecorder{TB: t}
	func() {
		defer r.cleanup()
		testkit.Serve(r, func(ctx context.Context) error { <-ctx.Done(); return errors.New("boom") })
	}()
	if r.failed != "run: boom" {
		t.Errorf("an error from run: failed %q", r.failed)
	}
}

// errRecorder is a testing.TB that records Errorf and runs its clean-ups
// when told.
type errRecorder struct {
	testing.TB
	failed   string
	cleanups []func()
}

func (r *errRecorder) Helper()                        {}
func (r *errRecorder) Errorf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }
func (r *errRecorder) Cleanup(f func())               { r.cleanups = append(r.cleanups, f) }
func (r *errRecorder) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestBuffer(t *testing.T) {
	var b testkit.Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				fmt.Fprint(&b, "x")
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := len(b.String()); n != 400 {
		t.Errorf("%d bytes after 400 concurrent writes of one", n)
	}
}
