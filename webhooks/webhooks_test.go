package webhooks_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/webhooks"
)

var t0 = time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)

func TestVerify(t *testing.T) {
	secret, previous := []byte("current"), []byte("previous")
	body := []byte(`{"event":"user-deleted"}`)
	good := webhooks.Sign(secret, t0, body)
	sig := good[strings.Index(good, "v1=")+3:]
	tests := []struct {
		name    string
		header  string
		body    []byte
		secrets [][]byte
		now     time.Time
		want    error
	}{
		{"good", good, body, [][]byte{secret}, t0, nil},
		{"previous secret during a changeover", webhooks.Sign(previous, t0, body), body, [][]byte{secret, previous}, t0, nil},
		{"previous secret after it", webhooks.Sign(previous, t0, body), body, [][]byte{secret}, t0, webhooks.ErrBadSignature},
		{"upper-case hex, spaces, other key names", " TS = 1772442900 , Signature=" + strings.ToUpper(sig), body, [][]byte{secret}, t0, nil},
		{"one of two signatures matches", "t=1772442900,v1=" + strings.Repeat("ab", 32) + ",v1=" + sig, body, [][]byte{secret}, t0, nil},
		{"milliseconds", "t=1772442900000,v1=" + sig, body, [][]byte{secret}, t0, webhooks.ErrBadSignature}, // signed over the seconds
		{"milliseconds signed as sent", "t=1772442900000,v1=" + hexMAC(secret, "1772442900000", body), body, [][]byte{secret}, t0, nil},
		{"milliseconds, 5m01s old", "t=1772442900000,v1=" + hexMAC(secret, "1772442900000", body), body, [][]byte{secret}, t0.Add(301 * time.Second), webhooks.ErrStale},
		{"4m59s old", good, body, [][]byte{secret}, t0.Add(299 * time.Second), nil},
		{"5m01s old", good, body, [][]byte{secret}, t0.Add(301 * time.Second), webhooks.ErrStale},
		{"5m01s ahead", good, body, [][]byte{secret}, t0.Add(-301 * time.Second), webhooks.ErrStale},
		{"stale and wrong: wrong first", webhooks.Sign([]byte("x"), t0, body), body, [][]byte{secret}, t0.Add(time.Hour), webhooks.ErrBadSignature},
		{"body changed", good, []byte(`{"event":"user-updated"}`), [][]byte{secret}, t0, webhooks.ErrBadSignature},
		{"no header", "", body, [][]byte{secret}, t0, webhooks.ErrBadSignature},
		{"no timestamp", "v1=" + sig, body, [][]byte{secret}, t0, webhooks.ErrBadSignature},
		{"no signature", "t=1772442900", body, [][]byte{secret}, t0, webhooks.ErrBadSignature},
		{"two timestamps", "t=1772442900,t=1772442900,v1=" + sig, body, [][]byte{secret}, t0, webhooks.ErrBadSignature},
		{"signed timestamp", "t=+1772442900,v1=" + sig, body, [][]byte{secret}, t0, webhooks.ErrBadSignature},
		{"short signature", "t=1772442900,v1=" + sig[:62], body, [][]byte{secret}, t0, webhooks.ErrBadSignature},
		{"no secret", good, body, nil, t0, webhooks.ErrBadSignature},
		{"empty secret", webhooks.Sign(nil, t0, body), body, [][]byte{{}}, t0, webhooks.ErrBadSignature},
		{"huge header", "t=1772442900,v1=" + sig + strings.Repeat(",x=y", 300), body, [][]byte{secret}, t0, webhooks.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhooks.Verify(tt.header, tt.body, tt.secrets, tt.now)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), "current") || strings.Contains(err.Error(), sig)) {
				t.Errorf("the error names a secret or the signature: %v", err)
			}
		})
	}
}

// hexMAC signs "<ts>:<body>" as TechPass does, independently of Sign.
func hexMAC(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + ":"))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// TestReceiveReadsNoSecretForAnUnsignedRequest: a request whose header does
// not parse is refused before a secret is read, and refusals are logged at
// most once a minute.
func TestReceiveReadsNoSecretForAnUnsignedRequest(t *testing.T) {
	reads := 0
	var logs strings.Builder
	now := t0
	r := webhooks.NewReceiver(webhooks.Config{
		Tenant:  "SHIP",
		Secrets: func() ([][]byte, error) { reads++; return [][]byte{[]byte("0123456789abcdef")}, nil },
		Now:     func() time.Time { return now },
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	for _, h := range []string{"", "garbage", "t=1", "v1=" + strings.Repeat("00", 32)} {
		if _, err := r.Receive(context.Background(), h, []byte(`{"event":"x"}`)); !errors.Is(err, webhooks.ErrBadSignature) {
			t.Errorf("header %q: %v", h, err)
		}
	}
	if reads != 0 {
		t.Errorf("secrets read %d times for unparseable headers", reads)
	}
	if n := strings.Count(logs.String(), "webhook refused"); n != 1 {
		t.Errorf("4 refusals within a minute logged %d times, want 1", n)
	}
	now = now.Add(time.Minute)
	r.Receive(context.Background(), "", nil)
	if !strings.Contains(logs.String(), "suppressed=3") {
		t.Errorf("the next line a minute later does not count the 3 held back:\n%s", logs.String())
	}
}

func TestParse(t *testing.T) {
	id := "00000000-0000-4000-8000-000000000001"
	other := "00000000-0000-4000-8000-0000000000ee"
	tests := []struct {
		body string
		kind webhooks.Kind
		user groups.User
		err  bool
	}{
		{`{"event":"user-deleted","user":{"id":"` + id + `","email":"a@x.gov.sg"}}`, webhooks.UserGone, groups.User{ID: id, Email: "a@x.gov.sg"}, false},
		{`{"type":"USER-TERMINATED","data":{"objectId":"` + strings.ToUpper(id) + `"}}`, webhooks.UserGone, groups.User{ID: id}, false},
		{`{"eventType":"user-updated","userId":"` + id + `","userPrincipalName":"b@x.gov.sg","displayName":"B"}`, webhooks.UserUpdated, groups.User{ID: id, Email: "b@x.gov.sg", DisplayName: "B"}, false},
		{`{"event":"user-updated","user":{"id":"not-a-uuid","email":"Ann <a@x>"}}`, webhooks.UserUpdated, groups.User{}, false},
		{`{"event":"application-credentials-expiring","expiresAt":"2026-12-31"}`, webhooks.CredentialsExpiring, groups.User{}, false},
		{`{"event":"application-deleted"}`, webhooks.ApplicationDeleted, groups.User{}, false},
		{`{"event":"user-invited","user":{"id":"` + id + `"}}`, webhooks.Other, groups.User{}, false},
		{`{"Event":"something-new"}`, webhooks.Other, groups.User{}, false},
		// A top-level "id" is the event's, not the user's.
		{`{"id":"` + other + `","event":"user-deleted","data":{"userId":"` + id + `"}}`, webhooks.UserGone, groups.User{ID: id}, false},
		{`{"id":"` + other + `","event":"user-deleted","email":"a@x.gov.sg"}`, webhooks.UserGone, groups.User{Email: "a@x.gov.sg"}, false},
		// Two places naming different users: none is usable.
		{`{"event":"user-deleted","userId":"` + other + `","user":{"id":"` + id + `"}}`, webhooks.UserGone, groups.User{}, false},
		{`{"event":"user-deleted","userId":"` + id + `","user":{"id":"` + id + `","email":"a@x.gov.sg"}}`, webhooks.UserGone, groups.User{ID: id, Email: "a@x.gov.sg"}, false},
		// user-updated: the new e-mail or UPN wins over the old one.
		{`{"event":"user-updated","user":{"id":"` + id + `","email":"old@x.gov.sg","newEmail":"new@x.gov.sg"}}`, webhooks.UserUpdated, groups.User{ID: id, Email: "new@x.gov.sg"}, false},
		{`{"event":"user-updated","data":{"userId":"` + id + `","mail":"old@x.gov.sg","newUserPrincipalName":"new@x.gov.sg"}}`, webhooks.UserUpdated, groups.User{ID: id, Email: "new@x.gov.sg"}, false},
		// Terminated events are a list, not a substring.
		{`{"event":"user-unterminated","userId":"` + id + `"}`, webhooks.Other, groups.User{}, false},
		{`{"event":"user-terminated","userId":"` + id + `"}`, webhooks.UserGone, groups.User{ID: id}, false},
		{`{"event":42}`, "", groups.User{}, true},
		{`[]`, "", groups.User{}, true},
		{`{"event":"x"} {"event":"y"}`, "", groups.User{}, true},
		{`{"event":"` + strings.Repeat("x", 65) + `"}`, "", groups.User{}, true},
		{`{"event":"x","a":` + strings.Repeat(`{"a":`, 10) + `1` + strings.Repeat(`}`, 10) + `}`, "", groups.User{}, true},
	}
	for _, tt := range tests {
		ev, err := webhooks.Parse([]byte(tt.body))
		if (err != nil) != tt.err || err != nil && !errors.Is(err, webhooks.ErrMalformed) {
			t.Errorf("Parse(%s): err %v, want error %v", tt.body, err, tt.err)
			continue
		}
		if ev.Kind != tt.kind || ev.User != tt.user {
			t.Errorf("Parse(%s) = %s %+v, want %s %+v", tt.body, ev.Kind, ev.User, tt.kind, tt.user)
		}
	}
	a, _ := webhooks.Parse([]byte(`{"event":"x","n":1}`))
	b, _ := webhooks.Parse([]byte(`{"event":"x", "n":1}`))
	if a.Digest == b.Digest {
		t.Errorf("different raw bodies share a digest")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"event":"user-deleted","user":{"id":"00000000-0000-4000-8000-000000000001"}}`))
	f.Add([]byte(`{"type":"user-updated","data":{"user":{"userId":"x","mail":"a@b"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := webhooks.Parse(b)
		if err != nil {
			return
		}
		if ev.Type == "" || len(ev.Type) > 64 || len(ev.User.Email) > 254 {
			t.Fatalf("Parse accepted %+v", ev)
		}
	})
}
