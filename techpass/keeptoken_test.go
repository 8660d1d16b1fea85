package techpass_test

import (
	"testing"
	"time"

	"github.com/groupgate/groupgate/techpass"
)

// TestKeepTokenOnlyForTheSameApplication: a rebuilt client takes over the
// token of the client it replaces only if both are for the same
// application; a client that differs in token endpoint, client id, API URL
// or namespace starts without it.
func TestKeepTokenOnlyForTheSameApplication(t *testing.T) {
	f := newFixture(t, 0)
	if err := f.client.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if f.client.Health().TokenValidUntil.IsZero() {
		t.Fatal("the first client has no token")
	}
	base := techpass.Config{
		Namespace: "SHIP", APIURL: f.srv.URL, TokenURL: techpass.TokenURL(f.srv.URL, "dir"), ClientID: "cid",
		ClientSecret: func() (string, error) { return "s3cret-one", nil },
		APIKey:       func() (string, error) { return "key-one", nil },
	}
	tests := []struct {
		name   string
		mutate func(*techpass.Config)
		keep   bool
	}{
		{"same application", func(*techpass.Config) {}, true},
		{"same application, another secret", func(c *techpass.Config) {
			c.ClientSecret = func() (string, error) { return "s3cret-two", nil }
		}, true},
		{"another namespace", func(c *techpass.Config) { c.Namespace = "OTHER" }, false},
		{"another client id", func(c *techpass.Config) { c.ClientID = "cid2" }, false},
		{"another directory", func(c *techpass.Config) { c.TokenURL = techpass.TokenURL(f.srv.URL, "dir2") }, false},
		{"another API", func(c *techpass.Config) { c.APIURL = f.srv.URL + "/elsewhere" }, false},
	}
	for _, tt := range tests {
		cfg := base
		tt.mutate(&cfg)
		c, err := techpass.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		kept := c.KeepToken(f.client)
		has := c.Health().TokenValidUntil.After(time.Now())
		if kept != tt.keep || has != tt.keep {
			t.Errorf("%s: KeepToken %v, token adopted %v; want %v", tt.name, kept, has, tt.keep)
		}
	}
	if f.client.KeepToken(f.client) || f.client.KeepToken(nil) {
		t.Error("KeepToken of itself or of nil reports a token taken over")
	}
}
