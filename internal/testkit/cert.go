package testkit

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

// CertOptions shape a self-signed certificate. The zero value asks for a
// certificate of a new 2048-bit RSA key, valid from an hour ago for a year.
type CertOptions struct {
	// CommonName is the subject's common name; "groupgate test" if empty.
	CommonName string
	// NotBefore and NotAfter bound the validity; if zero, an hour ago and
	// a year from now.
	NotBefore, NotAfter time.Time
	// Key is the key to certify; a new 2048-bit RSA key if nil.
	Key crypto.Signer
	// KeyUsage is the certificate's key usage; digital signature if zero.
	KeyUsage x509.KeyUsage
	// IPAddresses are the subject's alternative IP addresses, for a server
	// certificate.
	IPAddresses []net.IP
}

// Cert is a self-signed certificate with its key, also as PEM.
type Cert struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte // a "CERTIFICATE" block
	KeyPEM  []byte // a PKCS #8 "PRIVATE KEY" block
}

// NewCert returns a self-signed certificate shaped by o, with a random
// serial number so that no two are alike. It fails tb on any error.
func NewCert(tb testing.TB, o CertOptions) Cert {
	tb.Helper()
	key := o.Key
	if key == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			tb.Fatal(err)
		}
		key = k
	}
	now := time.Now()
	if o.CommonName == "" {
		o.CommonName = "groupgate test"
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(365 * 24 * time.Hour)
	}
	if o.KeyUsage == 0 {
		o.KeyUsage = x509.KeyUsageDigitalSignature
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: o.CommonName},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     o.KeyUsage,
		IPAddresses:  o.IPAddresses,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return Cert{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
	}
}

// RSAKey is the key as an RSA key, or nil if it is of another kind.
func (c Cert) RSAKey() *rsa.PrivateKey {
	k, _ := c.Key.(*rsa.PrivateKey)
	return k
}

// PKCS1KeyPEM is an RSA key as a PKCS #1 PEM "RSA PRIVATE KEY" block. It
// fails tb if the key is not RSA.
func (c Cert) PKCS1KeyPEM(tb testing.TB) []byte {
	tb.Helper()
	k := c.RSAKey()
	if k == nil {
		tb.Fatalf("PKCS1KeyPEM of a %T key", c.Key)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// WriteFiles writes the key (PKCS #8) to keyFile, if it is not empty, and
// then the certificate to certFile, both mode 0600. The key goes first, so
// that a reader watching the files never finds a certificate without its
// key.
func (c Cert) WriteFiles(tb testing.TB, certFile, keyFile string) {
	tb.Helper()
	if keyFile != "" {
		if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.WriteFile(certFile, c.CertPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
}
