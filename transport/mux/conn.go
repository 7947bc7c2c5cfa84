package mux

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/peerkit/peerkit/internal/streamconn"
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
	state   streamconn.State
	release func() // gives back the session's use, once
}

func newConn(s *yamux.Stream, tc *tls.Conn, release func()) net.Conn {
	c := &conn{Stream: s, release: release}
	if tc != nil {
		return &tlsConn{conn: c, tc: tc}
	}
	return c
}

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "mux", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// Read reads from the stream.
func (c *conn) Read(b []byte) (int, error) {
	if err := c.state.CanRead(); err != nil {
		return 0, c.opErr("read", err)
	}
	n, err := c.Stream.Read(b)
	if err != nil && c.state.Closed() {
		err = c.opErr("read", net.ErrClosed)
	}
	return n, err
}

// Write writes to the stream.
func (c *conn) Write(b []byte) (int, error) {
	if err := c.state.CanWrite(); err != nil {
		return 0, c.opErr("write", err)
	}
	n, err := c.Stream.Write(b)
	if err != nil && c.state.Closed() {
		err = c.opErr("write", net.ErrClosed)
	}
	return n, err
}

// Close sends FIN to the peer and unblocks local Reads and Writes, which
// then fail with net.ErrClosed; on a dialled stream it also gives back the
// session's use. A second Close returns net.ErrClosed.
func (c *conn) Close() error {
	if !c.state.MarkClosed() {
		return c.opErr("close", net.ErrClosed)
	}
	err := c.Stream.Close()
	// Wake a Read waiting for data that may never come.
	c.Stream.SetDeadline(time.Unix(1, 0))
	if c.release != nil {
		c.release()
	}
	return err
}

// SetDeadline sets the read and write deadlines.
func (c *conn) SetDeadline(t time.Time) error { return c.state.SetDeadline(c.Stream, t) }

// SetReadDeadline sets the read deadline.
func (c *conn) SetReadDeadline(t time.Time) error { return c.state.SetReadDeadline(c.Stream, t) }

// SetWriteDeadline sets the write deadline.
func (c *conn) SetWriteDeadline(t time.Time) error { return c.state.SetWriteDeadline(c.Stream, t) }

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
