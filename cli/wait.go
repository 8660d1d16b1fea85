package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/groupgate/groupgate/client"
)

// waitFlags are the flags of every write that can wait for its operation.
type waitFlags struct {
	wait           bool
	timeout        time.Duration
	idempotencyKey string
}

func (wf *waitFlags) bind(fs *flag.FlagSet) {
	fs.BoolVar(&wf.wait, "wait", false, "wait until the operation finishes, showing its progress on stderr; exit 6 if it failed or was cancelled")
	timeoutFlag(fs, &wf.timeout, "with --wait: give up waiting after this `duration` (exit 7); the operation stays queued")
	fs.StringVar(&wf.idempotencyKey, "idempotency-key", "", "Idempotency-Key: repeating the command with the same value returns the same operation instead of queuing another")
}

// timeoutFlag registers --timeout, which must be positive.
func timeoutFlag(fs *flag.FlagSet, d *time.Duration, usage string) {
	*d = 5 * time.Minute
	fs.Func("timeout", usage+" (default 5m)", func(s string) error {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			return errors.New("want a positive duration such as 90s or 5m")
		}
		*d = v
		return nil
	})
}

func finished(s client.OperationState) bool {
	return s == client.Succeeded || s == client.Failed || s == client.Cancelled
}

// accepted prints the operation a write was answered with, or with --wait
// waits for its outcome and prints that.
func (c *conn) accepted(ctx context.Context, resp client.Response, op *client.Operation, wf waitFlags) error {
	if op == nil {
		return show(c, resp, op, operationTable)
	}
	if !wf.wait {
		return c.print(resp.GetBody(), func(w io.Writer) { operationTable(w, op) })
	}
	return c.wait(ctx, resp.GetBody(), op, wf.timeout)
}

// wait polls the operation until it finishes or timeout passes, showing its
// progress on stderr: one line redrawn in place on a terminal, a line per
// change otherwise. It prints the finished operation and returns an error
// with ExitOpFailed when it failed or was cancelled. A 429 or 503 while
// polling is waited out (its Retry-After, at most 30 s).
func (c *conn) wait(ctx context.Context, body []byte, op *client.Operation, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p := &progress{w: c.env.Stderr, live: c.env.Interactive(), now: c.env.Now}
	defer p.clear()
	for !finished(op.State) {
		p.show(op)
		start := time.Now()
		// A long poll returns as soon as the operation finishes; its
		// length bounds how stale the progress line may get.
		resp, err := c.api.GetOperationWithResponse(wctx, op.Id, &client.GetOperationParams{Prefer: ptr("wait=1")})
		pause := c.env.PollInterval - time.Since(start)
		var e *exitError
		switch {
		case err != nil && ctx.Err() != nil:
			return failf(ExitInterrupted, "interrupted; operation %s goes on: wait again with 'groupgate operations wait %s'", op.Id, op.Id)
		case err != nil && wctx.Err() != nil:
			return failf(ExitTimeout, "operation %s is still %s after %s; it goes on: wait again with 'groupgate operations wait %s'", op.Id, op.State, timeout, op.Id)
		case errors.As(err, &e) && (e.status == http.StatusTooManyRequests || e.status == http.StatusServiceUnavailable):
			pause = max(min(e.retryAfter, 30*time.Second), c.env.PollInterval)
			p.note(fmt.Sprintf("%s: the server is busy (%d); asking again in %s", op.Id, e.status, pause))
		case err != nil:
			return err
		case resp.JSON200 == nil:
			return show(c, resp, resp.JSON200, operationTable)
		default:
			op, body = resp.JSON200, resp.Body
		}
		if !finished(op.State) && pause > 0 {
			select {
			case <-wctx.Done():
			case <-time.After(pause):
			}
		}
	}
	p.clear()
	if err := c.print(body, func(w io.Writer) { operationTable(w, op) }); err != nil {
		return err
	}
	return outcome(op)
}

// outcome is nil unless the operation ended failed or cancelled.
func outcome(op *client.Operation) error {
	switch op.State {
	case client.Failed:
		reason := str(op.LastError)
		if op.Error != nil {
			reason = op.Error.Title
			if op.Error.Detail != nil && *op.Error.Detail != "" {
				reason += ": " + *op.Error.Detail
			}
		}
		return failf(ExitOpFailed, "operation %s failed: %s (retry it with 'groupgate operations retry %s' once the cause is fixed)", op.Id, clean(reason), op.Id)
	case client.Cancelled:
		return failf(ExitOpFailed, "operation %s was cancelled", op.Id)
	}
	return nil
}

// progress draws an operation's progress on stderr.
type progress struct {
	w    io.Writer
	live bool // a terminal: redraw one line
	now  func() time.Time
	last string
	drew bool
}

func (p *progress) show(op *client.Operation) {
	line := clean(fmt.Sprintf("%s %s %s: %s", op.Id, op.Kind, op.FullName, describe(op, p.now())))
	if p.live {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drew = true
		return
	}
	// Plain lines only when something but the countdown changed.
	key := fmt.Sprint(op.State, num(op.Position), op.Attempts, str(op.LastError))
	if key != p.last {
		fmt.Fprintln(p.w, line)
		p.last = key
	}
}

// note adds a line about the polling itself, where lines are kept.
func (p *progress) note(line string) {
	if !p.live {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) clear() {
	if p.live && p.drew {
		fmt.Fprint(p.w, "\r\033[K")
		p.drew = false
	}
}

// describe says where an unfinished operation stands.
func describe(op *client.Operation, now time.Time) string {
	var b strings.Builder
	b.WriteString(string(op.State))
	if op.State == client.Queued && op.Position != nil {
		fmt.Fprintf(&b, ", position %d", *op.Position)
	}
	if op.State == client.Queued && op.EstimatedStartAt != nil {
		if d := op.EstimatedStartAt.Sub(now).Round(time.Second); d > 0 {
			fmt.Fprintf(&b, ", starts in ~%s", d)
		} else {
			b.WriteString(", starting")
		}
	}
	if op.Attempts > 0 {
		fmt.Fprintf(&b, ", attempt %d", op.Attempts)
	}
	if op.LastError != nil && *op.LastError != "" {
		fmt.Fprintf(&b, ", last error: %s", *op.LastError)
	}
	if op.NextAttemptAt != nil {
		if d := op.NextAttemptAt.Sub(now).Round(time.Second); d > 0 {
			fmt.Fprintf(&b, ", next attempt in %s", d)
		}
	}
	return b.String()
}
