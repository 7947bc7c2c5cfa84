package mux

import (
	"crypto/tls"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/peerkit/peerkit/transport"
)

// conn adapts a yamux stream to the full net.Conn contract:
//
//   - Close closes both directions locally: yamux's own Close only sends
//     FIN and leaves Read blocked until the peer closes too, while a
//     net.Conn's Close must unblock Read and Write and fail later calls
//     with net.ErrClosed.
//   - A deadline already in the past fails Read and Write at once; yamux
//     checks deadlines only when it has to wait.
//
// yamux v0.1.2 has no abortive close: after Close, the peer's Writes keep
// succeeding until its stream window (256 KiB by default) is full, and the
// stream is reset after the config's StreamCloseTimeout if the peer never
// closes its side.
type conn struct {
	*yamux.Stream
	closed atomic.Bool

	mu  sync.Mutex // guards the deadlines
	rdl time.Time
	wdl time.Time
}

func newConn(s *yamux.Stream, tc *tls.Conn) net.Conn {
	c := &conn{Stream: s}
	if tc != nil {
		return &tlsConn{conn: c, tc: tc}
	}
	return c
}

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "mux", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

func expired(dl time.Time) bool { return !dl.IsZero() && !time.Now().Before(dl) }

// Read reads from the stream.
func (c *conn) Read(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	c.mu.Lock()
	dl := c.rdl
	c.mu.Unlock()
	if expired(dl) {
		return 0, c.opErr("read", os.ErrDeadlineExceeded)
	}
	n, err := c.Stream.Read(b)
	if err != nil && c.closed.Load() {
		err = c.opErr("read", net.ErrClosed)
	}
	return n, err
}

// Write writes to the stream.
func (c *conn) Write(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	c.mu.Lock()
	dl := c.wdl
	c.mu.Unlock()
	if expired(dl) {
		return 0, c.opErr("write", os.ErrDeadlineExceeded)
	}
	n, err := c.Stream.Write(b)
	if err != nil && c.closed.Load() {
		err = c.opErr("write", net.ErrClosed)
	}
	return n, err
}

// Close sends FIN to the peer and unblocks local Reads and Writes, which
// then fail with net.ErrClosed. A second Close returns net.ErrClosed.
func (c *conn) Close() error {
	if c.closed.Swap(true) {
		return c.opErr("close", net.ErrClosed)
	}
	err := c.Stream.Close()
	// Wake a Read waiting for data that may never come.
	c.Stream.SetDeadline(time.Unix(1, 0))
	return err
}

// SetDeadline sets the read and write deadlines.
func (c *conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl, c.wdl = t, t
	c.mu.Unlock()
	if c.closed.Load() {
		return nil
	}
	return c.Stream.SetDeadline(t)
}

// SetReadDeadline sets the read deadline.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	c.mu.Unlock()
	if c.closed.Load() {
		return nil
	}
	return c.Stream.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	if c.closed.Load() {
		return nil
	}
	return c.Stream.SetWriteDeadline(t)
}

// tlsConn is a stream of a session that runs over TLS.
type tlsConn struct {
	*conn
	tc *tls.Conn
}

// ConnectionState returns the TLS state of the session's conn.
func (c *tlsConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

var (
	_ net.Conn          = (*conn)(nil)
	_ transport.TLSConn = (*tlsConn)(nil)
)
