package config_test

import (
	"strings"
	"testing"

	"github.com/groupgate/groupgate/config"
)

// TestConfigCredentialKinds: a tenant has exactly one client credential (a
// secret file, a secret variable, or a certificate with its key), and the
// token renewal and credential settings are checked.
func TestConfigCredentialKinds(t *testing.T) {
	base := config.TechPassConfig{APIURL: "https://api.techpass.gov.sg", DirectoryID: "d", ClientID: "c", APIKeyFile: "/k"}
	ok := []func(*config.TechPassConfig){
		func(tp *config.TechPassConfig) { tp.ClientSecretFile = "/s" },
		func(tp *config.TechPassConfig) { tp.ClientSecretEnv = "S" },
		func(tp *config.TechPassConfig) { tp.ClientCertificateFile = "/bundle.pem" },
		func(tp *config.TechPassConfig) {
			tp.ClientCertificateFile, tp.ClientKeyFile, tp.ClientAssertionAlg = "/tls.crt", "/tls.key", "PS256"
		},
	}
	for i, set := range ok {
		c := validConfig(base, set)
		if err := c.Validate(); err != nil {
			t.Errorf("case %d: %v", i, err)
		}
	}
	bad := map[string]func(*config.TechPassConfig){
		"exactly one of client_secret_file":             func(tp *config.TechPassConfig) {},
		"exactly one of client_secret_file, client_se":  func(tp *config.TechPassConfig) { tp.ClientSecretFile, tp.ClientCertificateFile = "/s", "/c" },
		"client_key_file needs client_certificate_file": func(tp *config.TechPassConfig) { tp.ClientSecretFile, tp.ClientKeyFile = "/s", "/k" },
		"is not RS256 or PS256": func(tp *config.TechPassConfig) {
			tp.ClientCertificateFile, tp.ClientAssertionAlg = "/c", "HS256"
		},
		"applies to certificate credentials only": func(tp *config.TechPassConfig) { tp.ClientSecretFile, tp.ClientAssertionAlg = "/s", "RS256" },
	}
	for want, set := range bad {
		c := validConfig(base, set)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
	c := validConfig(base, func(tp *config.TechPassConfig) { tp.ClientSecretFile = "/s" })
	c.Credentials.TokenRenewalShare = 1.5
	c.Credentials.MaxAge = 0
	err := c.Validate()
	for _, want := range []string{"token_renewal_share", "max_age"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

func validConfig(tp config.TechPassConfig, set func(*config.TechPassConfig)) config.Config {
	set(&tp)
	c := config.DefaultConfig()
	c.AllowHTTP = true
	c.Tenants = []config.TenantConfig{{Name: "SHIP", TechPass: tp}}
	return c
}
