// Package streamconn holds what the stream-per-Dial transports (mux and
// quic) add to a library's stream to make it a net.Conn: a closed flag, and
// a copy of the deadlines, so that a deadline already in the past fails Read
// and Write at once, as net.Conn requires (the libraries only wake a call
// already blocked).
package streamconn

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Deadliner is the deadline half of a library stream.
type Deadliner interface {
	SetDeadline(time.Time) error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// State is a stream's closed flag and deadlines. The zero value is open,
// with no deadlines.
type State struct {
	closed atomic.Bool
	mu     sync.Mutex // guards rdl and wdl
	rdl    time.Time
	wdl    time.Time
}

// Closed reports whether MarkClosed was called.
func (s *State) Closed() bool { return s.closed.Load() }

// MarkClosed marks the stream closed; it reports false if it already was.
func (s *State) MarkClosed() bool { return !s.closed.Swap(true) }

// CanRead returns the error a Read must fail with before it starts, if any:
// net.ErrClosed, or os.ErrDeadlineExceeded for a read deadline already past.
func (s *State) CanRead() error { return s.can(&s.rdl) }

// CanWrite is CanRead for a Write and the write deadline.
func (s *State) CanWrite() error { return s.can(&s.wdl) }

func (s *State) can(dl *time.Time) error {
	if s.closed.Load() {
		return net.ErrClosed
	}
	s.mu.Lock()
	d := *dl
	s.mu.Unlock()
	if !d.IsZero() && !time.Now().Before(d) {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// SetDeadline records t as both deadlines and passes it on to st, unless
// the stream is closed.
func (s *State) SetDeadline(st Deadliner, t time.Time) error {
	s.mu.Lock()
	s.rdl, s.wdl = t, t
	s.mu.Unlock()
	if s.closed.Load() {
		return nil
	}
	return st.SetDeadline(t)
}

// SetReadDeadline records t as the read deadline and passes it on.
func (s *State) SetReadDeadline(st Deadliner, t time.Time) error {
	s.mu.Lock()
	s.rdl = t
	s.mu.Unlock()
	if s.closed.Load() {
		return nil
	}
	return st.SetReadDeadline(t)
}

// SetWriteDeadline records t as the write deadline and passes it on.
func (s *State) SetWriteDeadline(st Deadliner, t time.Time) error {
	s.mu.Lock()
	s.wdl = t
	s.mu.Unlock()
	if s.closed.Load() {
		return nil
	}
	return st.SetWriteDeadline(t)
}
