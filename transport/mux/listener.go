package mux

import (
	"crypto/tls"
	"net"
	"sync"

	"github.com/hashicorp/yamux"

	"github.com/peerkit/peerkit/internal/acceptloop"
)

// Listen accepts TCP (or TLS) conns on addr, runs a yamux server session on
// each, and delivers the streams of all sessions through Accept.
func (t *Transport) Listen(addr string) (net.Listener, error) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, &net.OpError{Op: "listen", Net: "mux", Err: net.ErrClosed}
	}
	ln, err := t.tcp.Listen(addr)
	if err != nil {
		return nil, err
	}
	l := &listener{
		ln: ln, t: t, streams: make(chan net.Conn),
		done: make(chan struct{}), sessions: make(map[*yamux.Session]struct{}),
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		ln.Close()
		return nil, &net.OpError{Op: "listen", Net: "mux", Err: net.ErrClosed}
	}
	t.listeners[l] = struct{}{}
	t.mu.Unlock()
	l.wg.Go(l.acceptLoop)
	return l, nil
}

// listener owns an accept goroutine and one goroutine per session.
type listener struct {
	ln      net.Listener
	t       *Transport
	streams chan net.Conn
	done    chan struct{} // closed by shutdown
	once    sync.Once
	wg      sync.WaitGroup

	mu       sync.Mutex
	sessions map[*yamux.Session]struct{}
}

// acceptLoop accepts TCP conns until Close. An error other than a closed
// socket (a moment without file descriptors, a conn reset in the queue) is
// logged and retried after acceptloop's backoff, never the end of the
// listener.
func (l *listener) acceptLoop() {
	var b acceptloop.Backoff
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if acceptloop.Closed(err) {
				l.shutdown() // closed by Close (or under us): done
				return
			}
			if !b.Wait(l.t.log, "mux", err, l.done) {
				return
			}
			continue
		}
		b.Reset()
		sess, err := yamux.Server(c, l.t.conf)
		if err != nil { // cannot happen: New verified the config
			c.Close()
			continue
		}
		l.mu.Lock()
		select {
		case <-l.done:
			l.mu.Unlock()
			sess.Close()
			return
		default:
		}
		l.sessions[sess] = struct{}{}
		l.mu.Unlock()
		tc, _ := c.(*tls.Conn)
		l.wg.Go(func() { l.serve(sess, tc) })
	}
}

// serve delivers the streams of one session until it or the listener ends.
func (l *listener) serve(sess *yamux.Session, tc *tls.Conn) {
	defer func() {
		l.mu.Lock()
		delete(l.sessions, sess)
		l.mu.Unlock()
		sess.Close()
	}()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		c := newConn(st, tc, nil)
		select {
		case l.streams <- c:
		case <-l.done:
			st.Close()
			return
		}
	}
}

// Accept returns the next stream opened by a remote on any session.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.streams:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "mux", Addr: l.ln.Addr(), Err: net.ErrClosed}
	}
}

// Close stops accepting, closes every session of the listener and waits
// for the listener's goroutines. It is idempotent.
func (l *listener) Close() error {
	err := l.shutdown()
	l.wg.Wait()
	l.t.mu.Lock()
	delete(l.t.listeners, l)
	l.t.mu.Unlock()
	return err
}

// shutdown closes the socket and every session without waiting.
func (l *listener) shutdown() error {
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		close(l.done)
		sessions := l.sessions
		l.sessions = nil
		l.mu.Unlock()
		err = l.ln.Close()
		for s := range sessions {
			s.Close()
		}
	})
	return err
}

// Addr returns the listener's network address.
func (l *listener) Addr() net.Addr { return l.ln.Addr() }
