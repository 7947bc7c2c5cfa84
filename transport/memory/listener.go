package memory

import "net"

// listener accepts the conns dialled to its address. Its backlog is a
// channel, so Accept is durably blocked inside a synctest bubble.
type listener struct {
	net      *Network
	addr     Addr
	backlog  chan *conn
	done     chan struct{} // closed by Close
	closeTok chan struct{} // capacity 1: the first close takes it
}

// Accept waits for the next dialled conn. After Close it fails with an
// error matching net.ErrClosed.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.backlog:
		if isClosed(l.done) {
			l.net.forget(c.pair, ErrConnReset)
			return nil, l.closedErr()
		}
		return c, nil
	case <-l.done:
		return nil, l.closedErr()
	}
}

func (l *listener) closedErr() error {
	return &net.OpError{Op: "accept", Net: "memory", Addr: l.addr, Err: net.ErrClosed}
}

// Close stops listening. Conns dialled but not yet accepted are reset;
// accepted conns live on. Close is idempotent.
func (l *listener) Close() error {
	l.net.lock()
	l.closeLocked()
	l.net.unlock()
	l.drain(nil)
	return nil
}

// Addr returns the address listened on.
func (l *listener) Addr() net.Addr { return l.addr }

// closeLocked marks l closed and frees its address; the Network's lock is
// held. The caller drains l after unlocking.
func (l *listener) closeLocked() {
	select {
	case l.closeTok <- struct{}{}:
	default:
		return
	}
	close(l.done)
	if l.net.listeners[string(l.addr)] == l {
		delete(l.net.listeners, string(l.addr))
	}
}

// drain resets the conns left in the backlog and reports whether target
// was among them.
func (l *listener) drain(target *conn) bool {
	found := false
	for {
		select {
		case c := <-l.backlog:
			found = found || c == target
			l.net.forget(c.pair, ErrConnReset)
		default:
			return found
		}
	}
}
