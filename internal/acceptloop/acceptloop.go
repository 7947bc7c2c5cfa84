// Package acceptloop holds the rule every loop that serves a listener
// follows (the node's own and those inside the tcp+TLS, mux and quic
// listeners): an Accept error is transient unless the listener was closed,
// and a transient error is retried after a delay that starts at 5 ms and
// doubles up to 1 s, with a log line, as net/http's Server does. Only Close
// ends the loop: running out of file descriptors for a moment (EMFILE), or
// a connection reset before it was accepted, must not stop a node from
// accepting peers for good.
package acceptloop

import (
	"errors"
	"log/slog"
	"net"
	"time"
)

// Delays between retries of a failing Accept.
const (
	MinDelay = 5 * time.Millisecond
	MaxDelay = time.Second
)

// Backoff is the delay state of one accept loop. The zero value is ready;
// it is not safe for concurrent use (one loop owns it).
type Backoff struct {
	delay time.Duration
}

// Closed reports whether err means the listener was closed, which ends the
// loop. Every other error is transient.
func Closed(err error) bool { return errors.Is(err, net.ErrClosed) }

// Next returns the delay before the next retry: MinDelay after the first
// failure, doubling up to MaxDelay.
func (b *Backoff) Next() time.Duration {
	b.delay = min(max(2*b.delay, MinDelay), MaxDelay)
	return b.delay
}

// Reset is called after a successful Accept.
func (b *Backoff) Reset() { b.delay = 0 }

// Wait logs err with what, waits for the next delay, and reports true; it
// returns false at once if done is closed first. log may be nil.
func (b *Backoff) Wait(log *slog.Logger, what string, err error, done <-chan struct{}) bool {
	d := b.Next()
	if log != nil {
		log.Warn(what+": accept failed; retrying", "err", err, "retry_in", d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}
