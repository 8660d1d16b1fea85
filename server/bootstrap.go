package server

// What New reads from the configuration before any tenant runs: the
// configured tenants, projects and keys (seed), the key-encryption key
// (openBox) and the bootstrap operator key (operatorKeys).

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/groupgate/groupgate/credentials"
	"github.com/groupgate/groupgate/secretbox"
	"github.com/groupgate/groupgate/techpass"
	"github.com/groupgate/groupgate/tenants"
)

// seed creates the tenants, projects and keys of the configuration that the
// store does not have yet. The store is the source of truth: an entry that
// exists there is left alone (change it through the admin API).
func (s *Server) seed(ctx context.Context) error {
	now := s.opts.Now()
	for _, tc := range s.cfg.Tenants {
		t := tenants.Tenant{
			Name: tc.Name, GroupLimit: s.cfg.GroupLimit, Interval: time.Duration(s.cfg.Interval),
			CreatedAt: now, UpdatedAt: now,
			TechPass: tenants.TechPass{
				APIURL: tc.TechPass.APIURL, DirectoryID: tc.TechPass.DirectoryID, ClientID: tc.TechPass.ClientID,
				TokenURL:              tc.TechPass.TokenURL,
				ClientSecret:          credentialRef(tc.TechPass.ClientSecretFile+tc.TechPass.ClientCertificateFile, tc.TechPass.ClientSecretEnv, now), // or a certificate bundle
				APIKey:                credentialRef(tc.TechPass.APIKeyFile, tc.TechPass.APIKeyEnv, now),
				WebhookSecret:         credentialRef(tc.TechPass.WebhookSecretFile, tc.TechPass.WebhookSecretEnv, now),
				PreviousWebhookSecret: credentialRef(tc.TechPass.PreviousWebhookSecretFile, tc.TechPass.PreviousWebhookSecretEnv, now),
			},
		}
		if tc.TechPass.TokenURL == "" && tc.TechPass.LoginURL != "" {
			t.TechPass.TokenURL = techpass.TokenURL(tc.TechPass.LoginURL, tc.TechPass.DirectoryID)
		}
		if tc.GroupLimit > 0 {
			t.GroupLimit = tc.GroupLimit
		}
		if tc.Interval > 0 {
			t.Interval = time.Duration(tc.Interval)
		}
		err := s.store.CreateTenant(ctx, t)
		switch {
		case errors.Is(err, tenants.ErrConflict):
			s.logger.Info("tenant from the configuration exists in the store; the store's settings apply", "tenant", t.Name)
		case err != nil:
			return fmt.Errorf("seed tenant %s: %w", t.Name, err)
		default:
			s.logger.Info("tenant created from the configuration", "tenant", t.Name)
		}
		for _, pc := range tc.Projects {
			if _, err := s.store.Project(ctx, tc.Name, pc.Name); errors.Is(err, tenants.ErrNotFound) {
				spec := tenants.ProjectSpec{Name: pc.Name}
				if pc.GroupQuota > 0 {
					q := pc.GroupQuota
					spec.GroupQuota = &q
				}
				if _, err := s.admin.CreateProject(ctx, tc.Name, spec); err != nil {
					return fmt.Errorf("seed project %s:%s: %w", tc.Name, pc.Name, err)
				}
			}
			for _, kc := range pc.Keys {
				if _, err := s.store.Key(ctx, kc.ID); err == nil {
					continue
				}
				h, _ := tenants.ParseHash(kc.Hash) // checked by config.Config.Validate
				k := tenants.Key{ID: kc.ID, Name: "from configuration", Role: tenants.RoleProject, Tenant: tc.Name, Project: pc.Name,
					Hash: h, ExpiresAt: kc.ExpiresAt, CreatedBy: "configuration", CreatedAt: now}
				for _, sc := range kc.Scopes {
					k.Scopes = append(k.Scopes, tenants.Scope(sc))
				}
				if err := k.Validate(); err != nil {
					return fmt.Errorf("seed key %s: %w", kc.ID, err)
				}
				if err := s.store.CreateKey(ctx, k); err != nil {
					return fmt.Errorf("seed key %s: %w", kc.ID, err)
				}
			}
		}
	}
	return nil
}

func credentialRef(file, env string, now time.Time) tenants.Credential {
	switch {
	case file != "":
		return tenants.Credential{Kind: tenants.CredentialFile, Ref: file, SetAt: now}
	case env != "":
		return tenants.Credential{Kind: tenants.CredentialEnv, Ref: env, SetAt: now}
	}
	return tenants.Credential{}
}

// openBox reads the key-encryption key, if one is configured.
func (s *Server) openBox() error {
	var kek []byte
	switch {
	case s.cfg.KEKFile != "":
		b, err := credentials.ReadFile(s.cfg.KEKFile)
		if err != nil {
			return fmt.Errorf("key-encryption key: %w", err)
		}
		kek = b
	case s.opts.Getenv("GROUPGATE_KEK") != "":
		kek = []byte(s.opts.Getenv("GROUPGATE_KEK"))
	default:
		return nil
	}
	box, err := secretbox.New(kek)
	if err != nil {
		return err
	}
	s.box = box
	s.logger.Info("credentials written through the API are stored encrypted", "kek_id", box.KeyID())
	return nil
}

// operatorKeys reads the bootstrap operator key, if one is configured.
func (s *Server) operatorKeys() ([]tenants.Key, error) {
	var key string
	switch {
	case s.opts.OperatorKey != "":
		key = s.opts.OperatorKey
	case s.cfg.OperatorKeyFile != "":
		b, err := credentials.ReadFile(s.cfg.OperatorKeyFile)
		if err != nil {
			return nil, fmt.Errorf("operator key: %w", err)
		}
		key = string(b)
	case s.opts.Getenv("GROUPGATE_OPERATOR_KEY") != "":
		key = s.opts.Getenv("GROUPGATE_OPERATOR_KEY")
	default:
		return nil, nil
	}
	id := tenants.KeyID(key)
	if id == "" {
		return nil, errors.New("operator key: not a gk_<keyid>_<secret> key (groupgate newkey makes one)")
	}
	return []tenants.Key{{ID: id, Name: "bootstrap operator", Role: tenants.RoleOperator, Hash: sha256Sum(key), CreatedBy: "configuration"}}, nil
}

func sha256Sum(s string) [sha256.Size]byte { return sha256.Sum256([]byte(strings.TrimSpace(s))) }
