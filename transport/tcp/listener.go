package tcp

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/peerkit/peerkit/internal/acceptloop"
)

// Bounds on server-side TLS handshakes.
const (
	// HandshakeTimeout bounds one server-side TLS handshake.
	HandshakeTimeout = 10 * time.Second
	// maxPendingHandshakes bounds the handshakes in progress per listener;
	// further conns wait in the kernel's accept queue.
	maxPendingHandshakes = 64
)

// plainListener applies the transport's socket options to accepted conns.
type plainListener struct {
	net.Listener
	t *Transport
}

func (l *plainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.t.tune(c)
	return c, nil
}

// tlsListener completes each TLS handshake on its own goroutine before
// Accept returns the conn, so that a slow or silent client never blocks
// Accept, and a Dial returns as soon as its handshake is done even if the
// application has not yet used the accepted conn.
type tlsListener struct {
	ln    net.Listener
	t     *Transport
	ready chan *tls.Conn
	ctx   context.Context // cancelled by Close
	stop  context.CancelFunc
	sem   chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

func newTLSListener(ln net.Listener, t *Transport) *tlsListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &tlsListener{
		ln: ln, t: t, ready: make(chan *tls.Conn),
		ctx: ctx, stop: cancel, sem: make(chan struct{}, maxPendingHandshakes),
	}
	l.wg.Go(l.acceptLoop)
	return l
}

// acceptLoop accepts until Close. An error other than a closed socket (a
// moment without file descriptors, a conn reset in the queue) is logged
// and retried after acceptloop's backoff: the listener must not stop
// accepting for good because of it.
func (l *tlsListener) acceptLoop() {
	var b acceptloop.Backoff
	for {
		select {
		case l.sem <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
		c, err := l.ln.Accept()
		if err != nil {
			<-l.sem
			if l.ctx.Err() != nil {
				return
			}
			if acceptloop.Closed(err) {
				l.shutdown() // Accept callers get ErrClosed too
				return
			}
			if !b.Wait(l.t.log, "tcp+tls", err, l.ctx.Done()) {
				return
			}
			continue
		}
		b.Reset()
		l.t.tune(c)
		l.wg.Go(func() { l.handshake(c) })
	}
}

func (l *tlsListener) handshake(c net.Conn) {
	defer func() { <-l.sem }()
	tc := tls.Server(c, l.t.tls)
	ctx, cancel := context.WithTimeout(l.ctx, HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		c.Close()
		return
	}
	select {
	case l.ready <- tc:
	case <-l.ctx.Done():
		tc.Close()
	}
}

// Accept returns the next conn whose TLS handshake has completed.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.ln.Addr(), Err: net.ErrClosed}
	}
}

// Close stops accepting, abandons handshakes in progress and waits for
// the listener's goroutines to stop. It is idempotent.
func (l *tlsListener) Close() error {
	err := l.shutdown()
	l.wg.Wait()
	return err
}

// shutdown cancels the listener without waiting; its first call returns
// the error of closing the socket.
func (l *tlsListener) shutdown() error {
	var err error
	l.once.Do(func() {
		l.stop()
		err = l.ln.Close()
	})
	return err
}

// Addr returns the listener's network address.
func (l *tlsListener) Addr() net.Addr { return l.ln.Addr() }
