package quic

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/peerkit/peerkit/internal/streamconn"
	"github.com/peerkit/peerkit/transport"
)

// conn is one QUIC stream as a net.Conn.
//
//   - Addresses come from the stream's connection (*quic.Stream has none).
//   - Close closes both directions: it sends FIN and cancels reading
//     (STOP_SENDING), so the peer's later Writes fail and both sides free
//     the stream; local Reads and Writes then fail with net.ErrClosed.
//   - An accepted stream starts with the dialler's streamHeader byte,
//     which the first Read consumes and checks.
//   - A deadline already in the past fails Read and Write at once.
type conn struct {
	st *quicgo.Stream
	qc *quicgo.Conn

	state   streamconn.State
	hdrMu   sync.Mutex  // serialises reading the header
	hdrOK   atomic.Bool // header consumed (always true for dialled streams)
	release func()      // gives back the connection's use, once (nil if accepted)
}

func newConn(st *quicgo.Stream, qc *quicgo.Conn, accepted bool, release func()) *conn {
	c := &conn{st: st, qc: qc, release: release}
	c.hdrOK.Store(!accepted)
	return c
}

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "quic", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// readHeader consumes the dialler's header byte.
func (c *conn) readHeader() error {
	c.hdrMu.Lock()
	defer c.hdrMu.Unlock()
	if c.hdrOK.Load() {
		return nil
	}
	var b [1]byte
	if _, err := io.ReadFull(c.st, b[:]); err != nil {
		return err
	}
	if b[0] != streamHeader {
		c.Close()
		return fmt.Errorf("quic: stream header %#x, want %#x", b[0], streamHeader)
	}
	c.hdrOK.Store(true)
	return nil
}

// Read reads from the stream.
func (c *conn) Read(b []byte) (int, error) {
	if err := c.state.CanRead(); err != nil {
		return 0, c.opErr("read", err)
	}
	if !c.hdrOK.Load() {
		if err := c.readHeader(); err != nil {
			return 0, c.readErr(err)
		}
	}
	n, err := c.st.Read(b)
	if err != nil && err != io.EOF {
		err = c.readErr(err)
	}
	return n, err
}

func (c *conn) readErr(err error) error {
	if c.state.Closed() {
		return c.opErr("read", net.ErrClosed)
	}
	return c.opErr("read", err)
}

// Write writes to the stream.
func (c *conn) Write(b []byte) (int, error) {
	if err := c.state.CanWrite(); err != nil {
		return 0, c.opErr("write", err)
	}
	n, err := c.st.Write(b)
	if err != nil {
		if c.state.Closed() {
			err = net.ErrClosed
		}
		err = c.opErr("write", err)
	}
	return n, err
}

// Close sends FIN, stops reading, and unblocks local Reads and Writes; on
// a dialled stream it also gives back the connection's use. It returns nil
// the first time, net.ErrClosed after.
func (c *conn) Close() error {
	if !c.state.MarkClosed() {
		return c.opErr("close", net.ErrClosed)
	}
	c.st.CancelRead(0)
	// quic-go refuses to close a send side the peer already stopped (it
	// closed its end first); the stream is released either way, so that
	// is not an error for a net.Conn.
	c.st.Close()
	// Wake a Write blocked on flow control; already written data still
	// goes out, followed by FIN.
	c.st.SetWriteDeadline(time.Unix(1, 0))
	if c.release != nil {
		c.release()
	}
	return nil
}

// LocalAddr returns the local address of the stream's connection.
func (c *conn) LocalAddr() net.Addr { return c.qc.LocalAddr() }

// RemoteAddr returns the remote address of the stream's connection.
func (c *conn) RemoteAddr() net.Addr { return c.qc.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *conn) SetDeadline(t time.Time) error { return c.state.SetDeadline(c.st, t) }

// SetReadDeadline sets the read deadline.
func (c *conn) SetReadDeadline(t time.Time) error { return c.state.SetReadDeadline(c.st, t) }

// SetWriteDeadline sets the write deadline.
func (c *conn) SetWriteDeadline(t time.Time) error { return c.state.SetWriteDeadline(c.st, t) }

// ConnectionState returns the TLS state of the stream's connection.
func (c *conn) ConnectionState() tls.ConnectionState { return c.qc.ConnectionState().TLS }

var _ transport.TLSConn = (*conn)(nil)
