package api

import (
	"strings"
	"testing"
)

func TestIdempotencyKey(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, tt := range []struct {
		header *string
		want   string
		ok     bool
	}{
		{nil, "", true},
		{str("abc"), "abc", true},
		{str(`"8e03978e-40d5-43e8-bc93-6894a57f9324"`), "8e03978e-40d5-43e8-bc93-6894a57f9324", true},
		{str(" key with spaces "), "key with spaces", true},
		{str(strings.Repeat("k", 255)), strings.Repeat("k", 255), true},
		{str(strings.Repeat("k", 256)), "", false},
		{str(""), "", false},
		{str(`""`), "", false},
		{str("tab\there"), "", false},
		{str("ünicode"), "", false},
		{str(`a"b`), "", false},
	} {
		got, err := idempotencyKey(tt.header)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("idempotencyKey(%v) = %q, %v", tt.header, got, err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	a := fingerprint("POST", "SHIP:MOH:billing", "desc")
	if a != fingerprint("POST", "SHIP:MOH:billing", "desc") {
		t.Fatal("not deterministic")
	}
	for _, other := range []string{
		fingerprint("DELETE", "SHIP:MOH:billing", "desc"),
		fingerprint("POST", "SHIP:MOH:billing", "desc2"),
		fingerprint("POST", "SHIP:MOH:billin", "gdesc"), // boundaries matter
	} {
		if other == a {
			t.Fatal("different requests share a fingerprint")
		}
	}
}

func FuzzIdempotencyKey(f *testing.F) {
	for _, s := range []string{"abc", `"x"`, `"`, "", " ", "\x00", strings.Repeat("a", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := idempotencyKey(&s)
		if err != nil {
			return
		}
		if len(k) == 0 || len(k) > 255 || strings.ContainsAny(k, "\"\\\x00\n") {
			t.Fatalf("accepted %q as %q", s, k)
		}
	})
}
