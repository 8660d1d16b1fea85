package pgstore_test

import (
	"fmt"
	"testing"
	"time"
)

// TestWebhookNotices: a notice replaces the one of its kind, shows on
// every replica until it expires (kinds in order), and is forgotten by a
// prune after that or when its tenant is deleted.
func TestWebhookNotices(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := t.Context()
	t0 := time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)
	for _, n := range []struct {
		tenant, kind, text string
		expires            time.Time
	}{
		{"SHIP", "secret-expiring", "old text", t0.Add(time.Hour)},
		{"SHIP", "secret-expiring", "client secret expires soon", t0.Add(2 * time.Hour)},
		{"SHIP", "app-deleted", "application deleted", t0.Add(time.Hour)},
		{"TRAIN", "secret-expiring", "train secret expires", t0.Add(10 * time.Minute)},
	} {
		if err := a.PutWebhookNotice(ctx, n.tenant, n.kind, n.text, n.expires); err != nil {
			t.Fatal(err)
		}
	}
	show := func(at time.Time) string {
		t.Helper()
		got, err := b.WebhookNotices(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(got)
	}
	if got, want := show(t0), "map[SHIP:[application deleted client secret expires soon] TRAIN:[train secret expires]]"; got != want {
		t.Errorf("at t0: %s, want %s", got, want)
	}
	if got, want := show(t0.Add(time.Hour)), "map[SHIP:[client secret expires soon]]"; got != want {
		t.Errorf("an hour on (expiry exclusive): %s, want %s", got, want)
	}
	n, err := b.PruneWebhookNotices(ctx, t0.Add(time.Hour))
	if err != nil || n != 2 {
		t.Errorf("prune: %d, %v; want 2", n, err)
	}
	if got, want := show(t0), "map[SHIP:[client secret expires soon]]"; got != want {
		t.Errorf("after the prune: %s, want %s", got, want)
	}
	if err := b.DeleteWebhookNotices(ctx, "SHIP"); err != nil {
		t.Fatal(err)
	}
	if got := show(t0); got != "map[]" {
		t.Errorf("after deleting SHIP's: %s", got)
	}
}
