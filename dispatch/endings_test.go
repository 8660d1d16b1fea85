package dispatch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/groupgate/groupgate/dispatch"
	"github.com/groupgate/groupgate/groups"
	"github.com/groupgate/groupgate/queue"
)

// wording is a fake dispatch.Endings whose failures show what the
// dispatcher told it: the window retried and the last reason.
type wording struct{}

func (wording) RetriesSpent(_ queue.Operation, retried time.Duration, lastError string) *queue.Failure {
	return &queue.Failure{Status: 502, Title: "Retries spent", Detail: fmt.Sprintf("within %v; last: %s", retried, lastError)}
}

func (wording) Unworkable(queue.Operation) *queue.Failure {
	return &queue.Failure{Status: 500, Title: "Unworkable"}
}

// wordingHandler is a handler that words its own endings, as
// groups.Executor does.
type wordingHandler struct {
	wording
	exec HandlerFunc
}

func (h wordingHandler) Execute(ctx context.Context, op queue.Operation) Outcome {
	return h.exec(ctx, op)
}

// TestDispatcherEndings: the failures the dispatcher decides itself (retries
// spent, an outcome of no kind) are worded by the configured Endings, else
// by a Handler that implements Endings, else plainly, with no status: the
// queue itself knows no HTTP status and no upstream.
func TestDispatcherEndings(t *testing.T) {
	retry := HandlerFunc(func(context.Context, queue.Operation) Outcome {
		return Outcome{Kind: dispatch.Retry, Reason: "HTTP 503"}
	})
	none := HandlerFunc(func(context.Context, queue.Operation) Outcome { return Outcome{} })
	cases := []struct {
		name string
		cfg  Config
		want queue.Failure
	}{
		{"retries spent, configured", Config{Handler: retry, Endings: wording{}},
			queue.Failure{Status: 502, Title: "Retries spent", Detail: "within 0s; last: HTTP 503"}},
		{"retries spent, by the handler", Config{Handler: wordingHandler{exec: retry}},
			queue.Failure{Status: 502, Title: "Retries spent", Detail: "within 0s; last: HTTP 503"}},
		{"retries spent, plainly", Config{Handler: retry},
			queue.Failure{Title: "Retries spent", Detail: `retried for 0s; the last retry's reason: "HTTP 503"`}},
		{"no kind, by the handler", Config{Handler: wordingHandler{exec: none}},
			queue.Failure{Status: 500, Title: "Unworkable"}},
		{"no kind, plainly", Config{Handler: none},
			queue.Failure{Title: "Operation not carried out", Detail: "the handler's outcome could not be used"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			onEachBackend(t, func(t *testing.T, s *groups.Ledger) {
				op := enqueue(t, s, "SHIP", "a")
				cfg := tc.cfg
				cfg.Tenant, cfg.Store = "SHIP", s
				cfg.Now = newFakeClock().Now
				cfg.Retry = dispatch.RetryPolicy{MaxFailures: 1}
				startRun(t, dispatch.NewDispatcher(cfg).Run)
				got := waitSettled(t, s, op.ID)
				if got.State != queue.Failed || got.Failure == nil || *got.Failure != tc.want {
					t.Fatalf("State %q, Failure %+v; want failed with %+v", got.State, got.Failure, tc.want)
				}
			})
		})
	}
}
