package webhooks_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/groupgate/groupgate/boltstore"
	"github.com/groupgate/groupgate/webhooks"
)

// TestReceiveResumesAnUnrecordedDelivery: a delivery applied by a process
// that stopped before recording its outcome is told to OnOutcome when
// TechPass retries it (with what it did then), once; later repeats are
// duplicates.
func TestReceiveResumesAnUnrecordedDelivery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gg.db")
	st, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	secret := []byte("0123456789abcdef")
	body := []byte(`{"event":"user-deleted","data":{"userId":"00000000-0000-4000-8000-000000000001"}}`)
	ev, err := webhooks.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	// The earlier process applied it and stopped.
	u := ev.User
	if _, err := webhooks.Apply(t.Context(), st, webhooks.Delivery{Tenant: "SHIP", Digest: ev.Digest, At: t0, Expires: t0.Add(webhooks.Retention), Gone: &u}); err != nil {
		t.Fatal(err)
	}
	var told []webhooks.Outcome
	r := webhooks.NewReceiver(webhooks.Config{
		Tenant: "SHIP", Store: st, Now: func() time.Time { return t0.Add(5 * time.Minute) },
		Secrets:   func() ([][]byte, error) { return [][]byte{secret}, nil },
		OnOutcome: func(_ context.Context, o webhooks.Outcome) { told = append(told, o) },
	})
	for range 2 {
		if _, err := r.Receive(t.Context(), webhooks.Sign(secret, t0.Add(5*time.Minute), body), body); err != nil {
			t.Fatal(err)
		}
	}
	if len(told) != 1 || told[0].Status != webhooks.Processed || !told[0].Applied.Resumed {
		t.Fatalf("OnOutcome told %+v, want the resumed delivery once", told)
	}
}
