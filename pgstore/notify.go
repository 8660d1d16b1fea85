package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Signals between replicas: PostgreSQL's LISTEN/NOTIFY, with a polling
// fallback.
//
// # Channels
//
// A channel is named "groupgate.<topic>"; its payload names what changed,
// so a replica listens on a handful of channels whatever the number of
// tenants:
//
//	groupgate.tenants  tenants, projects or keys changed (payload empty);
//	                   sent by every committed tenants.Store write
//	groupgate.queue    an operation was enqueued (payload: the tenant);
//	                   sent after the commit, coalesced (see wakes)
//	groupgate.settled  an operation settled (payload: its id), for a held
//	                   Prefer: wait
//	groupgate.mirror   a mirror sync was requested (payload: the tenant)
//
// A notification sent in a transaction is delivered when, and only if, it
// commits. Delivery is at most once and only while connected: a listener
// that was disconnected, or a replica behind a connection pooler in
// transaction mode (where LISTEN does not work), learns nothing of what
// happened meanwhile. So a Notification is only a hint to re-read the
// store, and a Resync (after every (re)connection and on every poll tick)
// tells every subscriber to re-read whatever it watches.

// The channels, by topic.
const (
	ChannelTenants = "groupgate.tenants"
	ChannelQueue   = "groupgate.queue"
	ChannelSettled = "groupgate.settled"
	ChannelMirror  = "groupgate.mirror"
)

// maxChannelLen is PostgreSQL's identifier limit (NAMEDATALEN - 1): a
// longer channel name is silently truncated by LISTEN.
const maxChannelLen = 63

// maxPayloadLen is PostgreSQL's limit on a notification's payload.
const maxPayloadLen = 7999

// Notification is one signal to a subscriber.
type Notification struct {
	Channel string
	// Payload names what changed (see the channels).
	Payload string
	// Resync means notifications may have been missed (the listener
	// (re)connected, or a poll tick came): re-read everything watched.
	// Channel is set; Payload is empty.
	Resync bool
}

// ListenerConfig configures a Listener.
type ListenerConfig struct {
	// Channels to listen on; subscriptions are to these only.
	Channels []string
	// PollInterval, if positive, sends every subscriber a Resync that
	// often: the fallback that bounds the delay of a missed signal.
	PollInterval time.Duration
	// PollOnly skips LISTEN altogether, for a connection pooler in
	// transaction mode; PollInterval must then be set.
	PollOnly bool
	// CheckEvery is how long the listener waits for a notification before
	// it checks that its connection is alive (a half-open TCP connection
	// would keep it waiting forever); 0 means 30 s.
	CheckEvery time.Duration
	// Logger, if set, is told of lost connections.
	Logger *slog.Logger
}

// Listener holds one dedicated connection (not from the pool) that
// LISTENs on its channels, reconnecting when it is lost, and hands each
// notification to the channel's subscribers. Create it with NewListener,
// Subscribe, and Run it. It is safe for concurrent use.
type Listener struct {
	cfg     ListenerConfig
	connect func(context.Context) (*pgx.Conn, error)
	log     *slog.Logger

	mu     sync.Mutex
	subs   map[string]map[int]func(Notification)
	nextID int
}

// NewListener returns a listener on the store's database.
func (s *Store) NewListener(cfg ListenerConfig) (*Listener, error) {
	if len(cfg.Channels) == 0 {
		return nil, errors.New("listener: no channels")
	}
	for _, ch := range cfg.Channels {
		if ch == "" || len(ch) > maxChannelLen {
			return nil, fmt.Errorf("listener: channel %q must be 1-%d bytes", ch, maxChannelLen)
		}
	}
	if cfg.PollOnly && cfg.PollInterval <= 0 {
		return nil, errors.New("listener: polling only, but no poll interval")
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = 30 * time.Second
	}
	cc := s.pool.Config().ConnConfig.Copy()
	cc.RuntimeParams["application_name"] = "groupgate-listener"
	l := &Listener{
		cfg:     cfg,
		connect: func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, cc) },
		log:     cfg.Logger,
		subs:    map[string]map[int]func(Notification){},
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	for _, ch := range cfg.Channels {
		l.subs[ch] = map[int]func(Notification){}
	}
	return l, nil
}

// Subscribe calls fn with every notification on channel, one of the
// listener's, until the returned function is called. fn runs on the
// listener's goroutine: it must return quickly (a non-blocking send to a
// wake-up channel, say) and not call the Listener.
func (l *Listener) Subscribe(channel string, fn func(Notification)) (unsubscribe func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	subs, ok := l.subs[channel]
	if !ok {
		return nil, fmt.Errorf("listener: not listening on channel %q", channel)
	}
	id := l.nextID
	l.nextID++
	subs[id] = fn
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(subs, id)
	}, nil
}

// deliver hands n to the channel's subscribers.
func (l *Listener) deliver(n Notification) {
	l.mu.Lock()
	fns := make([]func(Notification), 0, len(l.subs[n.Channel]))
	for _, fn := range l.subs[n.Channel] {
		fns = append(fns, fn)
	}
	l.mu.Unlock()
	for _, fn := range fns {
		fn(n)
	}
}

// resync tells every subscriber of every channel to re-read.
func (l *Listener) resync() {
	for _, ch := range l.cfg.Channels {
		l.deliver(Notification{Channel: ch, Resync: true})
	}
}

// Run listens and polls until ctx ends, then closes its connection and
// returns ctx's error.
func (l *Listener) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if l.cfg.PollInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(l.cfg.PollInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					l.resync()
				}
			}
		}()
	}
	if !l.cfg.PollOnly {
		l.listen(ctx)
	}
	wg.Wait()
	return ctx.Err()
}

// listen keeps a connection listening, reconnecting with backoff (100 ms
// doubling to 5 s) while ctx lasts.
func (l *Listener) listen(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.log.Warn("PostgreSQL listener cannot listen; trying again", "err", err, "in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if err == nil {
			backoff = 100 * time.Millisecond // it had connected
		} else {
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// session connects, listens, resyncs every subscriber (it may have missed
// notifications) and delivers until the connection fails or ctx ends. It
// returns nil after it was connected and listening, else the error.
func (l *Listener) session(ctx context.Context) error {
	conn, err := l.connect(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range l.cfg.Channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listen on %s: %w", ch, err)
		}
	}
	l.resync()
	for {
		// A connection cut without a word (a half-open TCP connection)
		// would keep the wait quiet forever: after CheckEvery without a
		// notification, ask the server. A timed-out wait leaves the
		// connection open.
		wctx, cancel := context.WithTimeout(ctx, l.cfg.CheckEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && wctx.Err() != nil {
			pctx, cancel := context.WithTimeout(ctx, max(l.cfg.CheckEvery/3, 5*time.Second))
			err = conn.Ping(pctx)
			cancel()
			if err == nil {
				continue
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("PostgreSQL listener connection lost; reconnecting", "err", err)
			}
			return nil
		}
		l.deliver(Notification{Channel: n.Channel, Payload: n.Payload})
	}
}

// Notify sends payload on channel, at once (outside a transaction).
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	return notify(ctx, s.pool, channel, payload)
}

// execer is a pool, a connection or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// notify sends payload on channel through q; in a transaction, it is
// delivered when the transaction commits.
func notify(ctx context.Context, q execer, channel, payload string) error {
	if channel == "" || len(channel) > maxChannelLen || len(payload) > maxPayloadLen {
		return fmt.Errorf("notify: channel of 1-%d bytes and payload of at most %d bytes", maxChannelLen, maxPayloadLen)
	}
	if _, err := q.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload); err != nil {
		return fmt.Errorf("notify %s: %w", channel, err)
	}
	return nil
}
