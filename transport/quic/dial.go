package quic

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/peerkit/peerkit/transport"
)

// streamHeader is the one byte a dialled stream starts with. quic-go shows
// a new stream to the peer's AcceptStream only once data arrives on it, so
// Dial writes this byte at once and the accepting side consumes it before
// the first Read returns data. It doubles as a version byte.
const streamHeader byte = 0x01

// dialConn is one dialled QUIC connection, or the attempt to make it: a
// connected UDP socket, the quic-go Transport on it, and the connection.
// ready is closed once qc or err is set.
type dialConn struct {
	ready chan struct{}
	pc    *connectedUDP
	qtr   *quicgo.Transport
	qc    *quicgo.Conn
	err   error
}

func (d *dialConn) alive() bool { return d.err == nil && d.qc.Context().Err() == nil }

// Dial opens a new stream to addr on the connection to addr, dialling one
// if there is none or it has died.
func (t *Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, &net.OpError{Op: "dial", Net: "quic", Err: err}
		}
		d, err := t.conn(ctx, addr)
		if err != nil {
			return nil, err
		}
		st, err := d.qc.OpenStreamSync(ctx)
		if err == nil {
			if dl, ok := ctx.Deadline(); ok {
				st.SetWriteDeadline(dl)
			}
			_, err = st.Write([]byte{streamHeader})
			st.SetWriteDeadline(time.Time{})
			if err == nil {
				return newConn(st, d.qc, false), nil
			}
			st.CancelRead(0)
			st.CancelWrite(0)
		}
		if ctx.Err() != nil {
			return nil, &net.OpError{Op: "dial", Net: "quic", Err: ctx.Err()}
		}
		// The connection died between the check and the open: replace it
		// once.
		d.qc.CloseWithError(0, "")
		t.forget(addr, d)
		if attempt > 0 {
			return nil, &net.OpError{Op: "dial", Net: "quic", Err: err}
		}
	}
}

// conn returns a live connection to addr, dialling one if needed. Callers
// that find a dial in progress wait for it rather than dialling again.
func (t *Transport) conn(ctx context.Context, addr string) (*dialConn, error) {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, closedErr("dial")
		}
		d := t.conns[addr]
		if d == nil {
			d = &dialConn{ready: make(chan struct{})}
			t.conns[addr] = d
			t.mu.Unlock()
			t.connect(ctx, addr, d)
			if d.err != nil {
				return nil, d.err
			}
			return d, nil
		}
		t.mu.Unlock()
		select {
		case <-d.ready:
		case <-ctx.Done():
			return nil, &net.OpError{Op: "dial", Net: "quic", Err: ctx.Err()}
		}
		if d.alive() {
			return d, nil
		}
		t.forget(addr, d)
		if d.err != nil && !isCtxErr(d.err) {
			return nil, d.err // the shared attempt failed for a real reason
		}
		// Dead connection, or another caller's context ended its dial: retry.
	}
}

// connect dials addr and fills d. On success a watcher goroutine owns the
// connection: it forgets and frees it when it dies or the transport closes.
func (t *Transport) connect(ctx context.Context, addr string, d *dialConn) {
	defer close(d.ready)
	err := t.handshake(ctx, addr, d)
	if err == nil {
		t.mu.Lock()
		if t.closed {
			err = closedErr("dial")
		} else {
			t.wg.Go(func() { t.watch(addr, d) })
		}
		t.mu.Unlock()
	}
	if err != nil {
		d.free()
		d.err = err
		t.forget(addr, d)
	}
}

func (t *Transport) handshake(ctx context.Context, addr string, d *dialConn) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return &net.OpError{Op: "dial", Net: "quic", Err: err}
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return &net.OpError{Op: "dial", Net: "quic", Err: err}
	}
	uc, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return wrapRefused(err, false)
	}
	d.pc = &connectedUDP{uc: uc, raddr: raddr}
	d.qtr = &quicgo.Transport{Conn: d.pc}
	d.qc, err = d.qtr.Dial(ctx, raddr, t.clientConfig(host), t.conf)
	if err != nil {
		if ctx.Err() != nil {
			return &net.OpError{Op: "dial", Net: "quic", Addr: raddr, Err: ctx.Err()}
		}
		return wrapRefused(&net.OpError{Op: "dial", Net: "quic", Addr: raddr, Err: err}, d.pc.refused.Load())
	}
	return nil
}

// watch waits until d's connection dies or the transport closes, then
// forgets and frees it.
func (t *Transport) watch(addr string, d *dialConn) {
	select {
	case <-d.qc.Context().Done():
	case <-t.done:
	}
	t.forget(addr, d)
	d.free()
}

// free closes the connection, its quic-go Transport and its socket.
func (d *dialConn) free() {
	if d.qc != nil {
		d.qc.CloseWithError(0, "")
	}
	if d.qtr != nil {
		d.qtr.Close()
	}
	if d.pc != nil {
		d.pc.Close()
	}
}

// forget removes d from the pool if it is still addr's entry.
func (t *Transport) forget(addr string, d *dialConn) {
	t.mu.Lock()
	if t.conns[addr] == d {
		delete(t.conns, addr)
	}
	t.mu.Unlock()
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// refusedError marks a dial error that means nothing answered at the
// address: it matches transport.ErrRefused and unwraps to its cause.
type refusedError struct{ err error }

func (e *refusedError) Error() string   { return "quic: connection refused: " + e.err.Error() }
func (e *refusedError) Unwrap() []error { return []error{transport.ErrRefused, e.err} }

// wrapRefused marks err as refused if the socket saw ICMP port unreachable
// (ECONNREFUSED) or the handshake got no answer at all.
func wrapRefused(err error, sawRefused bool) error {
	var hto *quicgo.HandshakeTimeoutError
	if sawRefused || errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &hto) {
		return &refusedError{err: err}
	}
	return err
}

// connectedUDP presents a connected UDP socket as a net.PacketConn for
// quic-go. A connected socket is what makes a dial to a closed port fail
// fast: the kernel reports the ICMP port-unreachable answer as
// ECONNREFUSED on the next receive, which ends the quic-go Transport and
// the handshake at once. It deliberately lacks ReadMsgUDP/WriteMsgUDP, so
// quic-go uses plain reads and writes (a connected socket refuses
// addressed writes).
type connectedUDP struct {
	uc      *net.UDPConn
	raddr   *net.UDPAddr
	refused atomic.Bool
}

func (c *connectedUDP) note(err error) {
	if errors.Is(err, syscall.ECONNREFUSED) {
		c.refused.Store(true)
	}
}

// ReadFrom reads one datagram from the connected peer.
func (c *connectedUDP) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := c.uc.Read(b)
	if err != nil {
		c.note(err)
		return n, nil, err
	}
	return n, c.raddr, nil
}

// WriteTo writes one datagram to the connected peer; addr is ignored.
func (c *connectedUDP) WriteTo(b []byte, _ net.Addr) (int, error) {
	n, err := c.uc.Write(b)
	c.note(err)
	return n, err
}

func (c *connectedUDP) Close() error                       { return c.uc.Close() }
func (c *connectedUDP) LocalAddr() net.Addr                { return c.uc.LocalAddr() }
func (c *connectedUDP) SetDeadline(t time.Time) error      { return c.uc.SetDeadline(t) }
func (c *connectedUDP) SetReadDeadline(t time.Time) error  { return c.uc.SetReadDeadline(t) }
func (c *connectedUDP) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }
func (c *connectedUDP) SetReadBuffer(n int) error          { return c.uc.SetReadBuffer(n) }
func (c *connectedUDP) SetWriteBuffer(n int) error         { return c.uc.SetWriteBuffer(n) }

// SyscallConn lets quic-go size the socket buffers and set the DF bit.
func (c *connectedUDP) SyscallConn() (syscall.RawConn, error) { return c.uc.SyscallConn() }

var _ net.PacketConn = (*connectedUDP)(nil)
