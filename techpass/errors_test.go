package techpass_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/groupgate/groupgate/techpass"
)

// TestErrorBodies: both error shapes are read; the code keeps digits only,
// the trace id is kept only when short and of a safe charset (and free of
// credentials), the message is sanitized, and nothing else of the body
// reaches the error.
func TestErrorBodies(t *testing.T) {
	const apiKey, secret = "the-api-key-0123", "the-client-secret"
	body := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/token") {
			_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":1199,"access_token":"tok-123"}`))
			return
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c, err := techpass.New(techpass.Config{
		Namespace: "SHIP", APIURL: srv.URL, TokenURL: srv.URL + "/dir/token", ClientID: "cid",
		ClientSecret: func() (string, error) { return secret, nil },
		APIKey:       func() (string, error) { return apiKey, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		body                 string
		message, code, trace string
	}{
		{`{"message":"Forbidden"}`, "Forbidden", "", ""},
		{`{"error":{"code":14014,"message":"user not found","traceId":"1-abc_DEF.9:x"}}`, "user not found", "14014", "1-abc_DEF.9:x"},
		{`{"error":{"code":"14014","message":"quoted code","traceId":"t1"}}`, "quoted code", "14014", "t1"},
		{`{"error":{"code":"1 OR 1","message":"m","traceId":"has space"}}`, "m", "", ""},
		{`{"error":{"code":1,"message":"m","traceId":"` + strings.Repeat("a", 65) + `"}}`, "m", "1", ""},
		{`{"error":{"message":"key ` + apiKey + ` refused","traceId":"` + apiKey + `"}}`, "key [redacted] refused", "", ""},
		{`{"error":{"message":"secret ` + secret + `\u0007é"},"extra":"DROPPED"}`, "secret [redacted]", "", ""},
		{`not json`, "", "", ""},
	} {
		body = tt.body
		_, err := c.ListGroups(context.Background())
		var ae *techpass.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
			t.Fatalf("%s: err = %v", tt.body, err)
		}
		if ae.Message != tt.message || ae.Code != tt.code || ae.TraceID != tt.trace {
			t.Errorf("%s:\n got message %q code %q trace %q\nwant message %q code %q trace %q", tt.body, ae.Message, ae.Code, ae.TraceID, tt.message, tt.code, tt.trace)
		}
		for _, leak := range []string{apiKey, secret, "DROPPED", "tok-123"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%s: error %q carries %q", tt.body, err, leak)
			}
		}
	}
}
