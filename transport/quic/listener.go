package quic

import (
	"context"
	"errors"
	"net"
	"sync"

	quicgo "github.com/quic-go/quic-go"

	"github.com/peerkit/peerkit/internal/acceptloop"
)

// Listen opens a UDP socket on addr and accepts QUIC connections on it;
// the streams of every connection are delivered through Accept.
func (t *Transport) Listen(addr string) (net.Listener, error) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, closedErr("listen")
	}
	uaddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "quic", Err: err}
	}
	uc, err := net.ListenUDP("udp", uaddr)
	if err != nil {
		return nil, err
	}
	qtr := &quicgo.Transport{Conn: uc}
	ql, err := qtr.Listen(t.server, t.conf)
	if err != nil {
		qtr.Close()
		uc.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{
		t: t, uc: uc, qtr: qtr, ql: ql, ctx: ctx, cancel: cancel,
		streams: make(chan *conn), conns: make(map[*quicgo.Conn]struct{}),
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		l.Close()
		return nil, closedErr("listen")
	}
	t.listeners[l] = struct{}{}
	t.mu.Unlock()
	l.wg.Go(l.acceptConns)
	return l, nil
}

// listener owns a UDP socket, the quic-go Transport and Listener on it, an
// accept goroutine, and one goroutine per accepted connection.
type listener struct {
	t       *Transport
	uc      *net.UDPConn
	qtr     *quicgo.Transport
	ql      *quicgo.Listener
	ctx     context.Context // cancelled by shutdown
	cancel  context.CancelFunc
	streams chan *conn
	once    sync.Once
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns map[*quicgo.Conn]struct{} // nil once shut down
}

// acceptConns accepts connections until Close. quic-go's Accept fails
// only once its listener is closed, or its socket failed for good (which
// also ends it): both end the loop, the second with a log line. Any other
// error is logged and retried after acceptloop's backoff.
func (l *listener) acceptConns() {
	var b acceptloop.Backoff
	for {
		qc, err := l.ql.Accept(l.ctx)
		if err != nil {
			if l.ctx.Err() != nil {
				return
			}
			if acceptloop.Closed(err) {
				l.t.log.Error("quic: listener ended by its socket; closing it", "addr", l.Addr(), "err", err)
				l.shutdown()
				return
			}
			if !b.Wait(l.t.log, "quic", err, l.ctx.Done()) {
				return
			}
			continue
		}
		b.Reset()
		l.mu.Lock()
		if l.conns == nil {
			l.mu.Unlock()
			qc.CloseWithError(0, "listener closed")
			return
		}
		l.conns[qc] = struct{}{}
		l.mu.Unlock()
		l.wg.Go(func() { l.acceptStreams(qc) })
	}
}

// acceptStreams delivers the streams of qc until it or the listener ends.
// An error that is neither is logged and retried after a backoff.
func (l *listener) acceptStreams(qc *quicgo.Conn) {
	defer func() {
		l.mu.Lock()
		if l.conns != nil {
			delete(l.conns, qc)
		}
		l.mu.Unlock()
	}()
	var b acceptloop.Backoff
	for {
		st, err := qc.AcceptStream(l.ctx)
		if err != nil {
			if l.ctx.Err() != nil || connEnded(qc, err) {
				return
			}
			if !b.Wait(l.t.log, "quic: accept stream", err, l.ctx.Done()) {
				return
			}
			continue
		}
		b.Reset()
		select {
		case l.streams <- newConn(st, qc, true, nil):
		case <-l.ctx.Done():
			st.CancelRead(0)
			st.CancelWrite(0)
			return
		}
	}
}

// connEnded reports whether err, from qc's AcceptStream, means that qc
// has ended: it was closed by either side, idled out or was reset.
func connEnded(qc *quicgo.Conn, err error) bool {
	if qc.Context().Err() != nil || errors.Is(err, net.ErrClosed) {
		return true
	}
	var (
		app   *quicgo.ApplicationError
		tr    *quicgo.TransportError
		idle  *quicgo.IdleTimeoutError
		hto   *quicgo.HandshakeTimeoutError
		reset *quicgo.StatelessResetError
		vn    *quicgo.VersionNegotiationError
	)
	return errors.As(err, &app) || errors.As(err, &tr) || errors.As(err, &idle) ||
		errors.As(err, &hto) || errors.As(err, &reset) || errors.As(err, &vn)
}

// Accept returns the next stream a remote opened on any connection.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.streams:
		return c, nil
	case <-l.ctx.Done():
		return nil, &net.OpError{Op: "accept", Net: "quic", Addr: l.Addr(), Err: net.ErrClosed}
	}
}

// Close closes every accepted connection (telling the peers), the socket,
// and waits for the listener's goroutines. It is idempotent.
func (l *listener) Close() error {
	l.shutdown()
	l.wg.Wait()
	l.t.mu.Lock()
	delete(l.t.listeners, l)
	l.t.mu.Unlock()
	return nil
}

func (l *listener) shutdown() {
	l.once.Do(func() {
		// Take the connections before cancelling: an acceptStreams that
		// sees the cancel removes its connection from the map, which
		// then would never be told of the close.
		l.mu.Lock()
		conns := l.conns
		l.conns = nil
		l.mu.Unlock()
		l.cancel()
		for qc := range conns {
			qc.CloseWithError(0, "listener closed")
		}
		l.ql.Close()
		l.qtr.Close()
		l.uc.Close()
	})
}

// Addr returns the UDP address the listener is bound to.
func (l *listener) Addr() net.Addr { return l.uc.LocalAddr() }
