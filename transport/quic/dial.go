package quic

import (
	"context"
	"errors"
	"net"
	"sync"
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

// session is one dialled QUIC connection on the transport's socket.
type session struct {
	qc        *quicgo.Conn
	stopWatch func() // ends the watch for ICMP errors from its peer
}

func (s *session) Alive() bool { return s.qc.Context().Err() == nil }

// Close closes the connection, telling the peer.
func (s *session) Close() error {
	s.stopWatch()
	s.qc.CloseWithError(0, "")
	return nil
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

// socket returns the transport's dial socket, opening it on first use. A
// failure (such as EMFILE) is not remembered: the next Dial tries again.
func (t *Transport) socket() (*dialSocket, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, closedErr("dial")
	}
	if t.sock == nil {
		s, err := newDialSocket()
		if err != nil {
			return nil, err
		}
		t.sock = s
	}
	return t.sock, nil
}

// dialSession makes a new QUIC connection to addr from the transport's
// socket. An ICMP error for its handshake packets (port or host
// unreachable) ends the attempt at once.
func (t *Transport) dialSession(ctx context.Context, addr string) (*session, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "quic", Err: err}
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "quic", Err: err}
	}
	sock, err := t.socket()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := sock.watch(raddr.AddrPort(), func(r icmpReport) {
		if r.handshake && (r.errno == syscall.ECONNREFUSED || r.errno == syscall.EHOSTUNREACH || r.errno == syscall.ENETUNREACH) {
			cancel(&net.OpError{Op: "dial", Net: "quic", Addr: raddr, Err: r.errno})
		}
	})
	qc, err := sock.qtr.Dial(dctx, raddr, t.clientConfig(host), t.conf)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return nil, &net.OpError{Op: "dial", Net: "quic", Addr: raddr, Err: ctx.Err()}
		}
		var op *net.OpError
		if !errors.As(err, &op) {
			err = &net.OpError{Op: "dial", Net: "quic", Addr: raddr, Err: err}
		}
		return nil, wrapRefused(err)
	}
	// A port-unreachable answer to a live connection's packets means the
	// peer's socket is gone: close the connection now rather than when
	// keep-alives time out.
	var once sync.Once
	s := &session{qc: qc}
	s.stopWatch = sock.watch(raddr.AddrPort(), func(r icmpReport) {
		if r.errno == syscall.ECONNREFUSED {
			once.Do(func() { sock.closeConn(qc, "peer unreachable") })
		}
	})
	return s, nil
}

// wrapRefused marks a handshake's error as refused if an ICMP port
// unreachable answered (ECONNREFUSED) or nothing answered at all: quic-go
// then reports an IdleTimeoutError after HandshakeIdleTimeout, or a
// HandshakeTimeoutError if some packets came but the handshake did not
// finish in twice that.
func wrapRefused(err error) error {
	var (
		hto  *quicgo.HandshakeTimeoutError
		idle *quicgo.IdleTimeoutError
	)
	if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &hto) || errors.As(err, &idle) {
		return connpool.Refused(err)
	}
	return err
}
