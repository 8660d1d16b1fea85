package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate/internal/pgtest"
	"github.com/groupgate/groupgate/pgstore"
	"github.com/groupgate/groupgate/tenants"
)

// inbox collects what a subscriber is handed.
type inbox chan pgstore.Notification

func (in inbox) put(n pgstore.Notification) {
	select {
	case in <- n:
	default:
		panic("inbox full")
	}
}

// next returns the next notification that is not a Resync, failing after
// a few seconds.
func (in inbox) next(t *testing.T, what string) pgstore.Notification {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case n := <-in:
			if !n.Resync {
				return n
			}
		case <-timeout:
			t.Fatalf("%s: nothing delivered within 5 s", what)
		}
	}
}

// resync waits for a Resync.
func (in inbox) resync(t *testing.T, what string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case n := <-in:
			if n.Resync {
				return
			}
		case <-timeout:
			t.Fatalf("%s: no resync within 5 s", what)
		}
	}
}

// runListener subscribes an inbox to each channel and runs l until t ends.
func runListener(t *testing.T, l *pgstore.Listener, channels ...string) map[string]inbox {
	t.Helper()
	boxes := map[string]inbox{}
	for _, ch := range channels {
		box := make(inbox, 1000)
		if _, err := l.Subscribe(ch, box.put); err != nil {
			t.Fatal(err)
		}
		boxes[ch] = box
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := l.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return boxes
}

// listenQueue runs a listener of s on ChannelQueue alone, with cfg's other
// settings, until t ends and returns its inbox once the listener has said
// it is connected.
func listenQueue(t *testing.T, s *pgstore.Store, cfg pgstore.ListenerConfig) inbox {
	t.Helper()
	cfg.Channels = []string{pgstore.ChannelQueue}
	l, err := s.NewListener(cfg)
	if err != nil {
		t.Fatal(err)
	}
	queue := runListener(t, l, pgstore.ChannelQueue)[pgstore.ChannelQueue]
	queue.resync(t, "connected")
	return queue
}

// TestListenerDeliversAcrossPools: a notification sent through one pool
// (replica) reaches the subscribers of its channel on another, and only
// them; tenants writes signal on commit only.
func TestListenerDeliversAcrossPools(t *testing.T) {
	a, b := twoReplicas(t)
	l, err := a.NewListener(pgstore.ListenerConfig{Channels: []string{pgstore.ChannelQueue, pgstore.ChannelTenants}})
	if err != nil {
		t.Fatal(err)
	}
	boxes := runListener(t, l, pgstore.ChannelQueue, pgstore.ChannelTenants)
	queue, tn := boxes[pgstore.ChannelQueue], boxes[pgstore.ChannelTenants]
	queue.resync(t, "connected") // listening from here on
	ctx := t.Context()
	if err := b.Notify(ctx, pgstore.ChannelQueue, "SHIP"); err != nil {
		t.Fatal(err)
	}
	if n := queue.next(t, "queue"); n.Channel != pgstore.ChannelQueue || n.Payload != "SHIP" {
		t.Errorf("queue subscriber got %+v", n)
	}
	ship := tenants.Tenant{Name: "SHIP", GroupLimit: 50, Interval: time.Second}
	if err := b.CreateTenant(ctx, ship); err != nil {
		t.Fatal(err)
	}
	if n := tn.next(t, "tenant created"); n.Channel != pgstore.ChannelTenants || n.Payload != "" {
		t.Errorf("tenants subscriber got %+v", n)
	}
	// A refused write commits nothing and signals nothing: the next
	// signal is the marker sent after it.
	if err := b.CreateTenant(ctx, ship); !errors.Is(err, tenants.ErrConflict) {
		t.Fatalf("second CreateTenant: %v", err)
	}
	if err := b.Notify(ctx, pgstore.ChannelTenants, "marker"); err != nil {
		t.Fatal(err)
	}
	if n := tn.next(t, "marker"); n.Payload != "marker" {
		t.Errorf("after a refused write the tenants subscriber got %+v, want the marker", n)
	}
	select {
	case n := <-queue:
		if !n.Resync {
			t.Errorf("queue subscriber got another channel's notification %+v", n)
		}
	default:
	}
	if _, err := l.Subscribe("groupgate.other", func(pgstore.Notification) {}); err == nil {
		t.Error("subscribing to a channel the listener does not listen on was accepted")
	}
}

// TestListenerReconnects: when its connection is killed, the listener
// connects again, tells subscribers to resync, and delivers again.
func TestListenerReconnects(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := mustOpenDSN(t, dsn), mustOpenDSN(t, dsn)
	queue := listenQueue(t, a, pgstore.ListenerConfig{})
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'groupgate-listener' AND datname = current_database()`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listener connections, want 1", killed)
	}
	queue.resync(t, "reconnected")
	if err := b.Notify(ctx, pgstore.ChannelQueue, "TRAIN"); err != nil {
		t.Fatal(err)
	}
	if n := queue.next(t, "after reconnecting"); n.Payload != "TRAIN" {
		t.Errorf("after reconnecting: %+v", n)
	}
}

// TestListenerSurvivesItsChecks: the listener's liveness checks (a wait
// that times out, then a ping) keep the connection and lose nothing.
func TestListenerSurvivesItsChecks(t *testing.T) {
	a, b := twoReplicas(t)
	queue := listenQueue(t, a, pgstore.ListenerConfig{CheckEvery: 20 * time.Millisecond})
	for i := range 5 {
		time.Sleep(50 * time.Millisecond) // a few checks
		payload := fmt.Sprint("T", i)
		if err := b.Notify(t.Context(), pgstore.ChannelQueue, payload); err != nil {
			t.Fatal(err)
		}
		if n := queue.next(t, payload); n.Payload != payload {
			t.Fatalf("got %+v, want %s", n, payload)
		}
	}
	select {
	case n := <-queue:
		t.Errorf("after the checks: %+v (a Resync means the listener reconnected)", n)
	default:
	}
}

// TestListenerPollOnly: without LISTEN (a pooler in transaction mode),
// subscribers get a Resync every poll interval and nothing else; an
// unsubscribed function gets nothing more.
func TestListenerPollOnly(t *testing.T) {
	s := mustOpen(t)
	if _, err := s.NewListener(pgstore.ListenerConfig{Channels: []string{pgstore.ChannelQueue}, PollOnly: true}); err == nil {
		t.Error("polling only without an interval was accepted")
	}
	l, err := s.NewListener(pgstore.ListenerConfig{Channels: []string{pgstore.ChannelQueue}, PollOnly: true, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	other := 0
	unsubscribe, err := l.Subscribe(pgstore.ChannelQueue, func(pgstore.Notification) { mu.Lock(); other++; mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	unsubscribe()
	queue := runListener(t, l, pgstore.ChannelQueue)[pgstore.ChannelQueue]
	if err := s.Notify(t.Context(), pgstore.ChannelQueue, "SHIP"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		n := <-queue
		if !n.Resync || n.Channel != pgstore.ChannelQueue {
			t.Fatalf("poll %d: got %+v, want a Resync of the queue channel", i, n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if other != 0 {
		t.Errorf("an unsubscribed function was called %d times", other)
	}
}
