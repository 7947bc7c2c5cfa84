package quic

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/peerkit/peerkit/internal/connpool"
)

// streamHeader is the one byte a dialled stream starts with. quic-go shows
// a new stream to the peer's AcceptStream only once data arrives on it, so
// Dial writes this byte at once and the accepting side consumes it before
// the first Read returns data. It doubles as a version byte.
const streamHeader byte = 0x01

// session is one dialled QUIC connection: a connected UDP socket, the
// quic-go Transport on it, and the connection.
type session struct {
	pc  *connectedUDP
	qtr *quicgo.Transport
	qc  *quicgo.Conn
}

func (s *session) Alive() bool { return s.qc.Context().Err() == nil }

// Close closes the connection, its quic-go Transport and its socket.
func (s *session) Close() error {
	s.qc.CloseWithError(0, "")
	s.free()
	return nil
}

func (s *session) free() {
	if s.qtr != nil {
		s.qtr.Close()
	}
	if s.pc != nil {
		s.pc.Close()
	}
}

// Dial opens a new stream to addr on the connection to addr, dialling one
// if there is none or it has died.
func (t *Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var st *quicgo.Stream
	lease, err := t.pool.Open(ctx, addr, func(s *session) (err error) {
		st, err = s.qc.OpenStreamSync(ctx)
		if err != nil {
			return err
		}
		if dl, ok := ctx.Deadline(); ok {
			st.SetWriteDeadline(dl)
		}
		_, err = st.Write([]byte{streamHeader})
		st.SetWriteDeadline(time.Time{})
		if err != nil {
			st.CancelRead(0)
			st.CancelWrite(0)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return newConn(st, lease.Session().qc, false, lease.Release), nil
}

// dialSession makes a new QUIC connection to addr from a connected UDP
// socket of its own.
func (t *Transport) dialSession(ctx context.Context, addr string) (*session, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "quic", Err: err}
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "quic", Err: err}
	}
	uc, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return nil, wrapRefused(err, false)
	}
	s := &session{pc: &connectedUDP{uc: uc, raddr: raddr}}
	s.qtr = &quicgo.Transport{Conn: s.pc}
	s.qc, err = s.qtr.Dial(ctx, raddr, t.clientConfig(host), t.conf)
	if err != nil {
		s.free()
		if ctx.Err() != nil {
			return nil, &net.OpError{Op: "dial", Net: "quic", Addr: raddr, Err: ctx.Err()}
		}
		return nil, wrapRefused(&net.OpError{Op: "dial", Net: "quic", Addr: raddr, Err: err}, s.pc.refused.Load())
	}
	return s, nil
}

// wrapRefused marks err as refused if the socket saw ICMP port unreachable
// (ECONNREFUSED) or the handshake got no answer at all.
func wrapRefused(err error, sawRefused bool) error {
	var hto *quicgo.HandshakeTimeoutError
	if sawRefused || errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &hto) {
		return connpool.Refused(err)
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
