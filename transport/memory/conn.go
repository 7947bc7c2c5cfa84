package memory

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// conn is one end of an in-memory connection. It reads from in and writes
// to out; its peer has the same two pipes swapped.
type conn struct {
	net    *Network
	pair   *pair
	local  Addr
	remote Addr
	// src and dst are the fault keys of the out direction: the listen
	// addresses of this end's node and of the peer's ("" for anonymous).
	src, dst string

	in, out *pipe

	wrmu     chan struct{} // capacity 1: one Write at a time, never interleaved
	closeTok chan struct{} // capacity 1: the first Close takes it
	done     chan struct{} // closed by Close

	readDeadline  deadline
	writeDeadline deadline
}

func newConn(n *Network, p *pair, local, remote Addr, src, dst string, in, out *pipe) *conn {
	return &conn{
		net: n, pair: p, local: local, remote: remote, src: src, dst: dst,
		in: in, out: out,
		wrmu:          make(chan struct{}, 1),
		closeTok:      make(chan struct{}, 1),
		done:          make(chan struct{}),
		readDeadline:  makeDeadline(),
		writeDeadline: makeDeadline(),
	}
}

func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "memory", Source: c.local, Addr: c.remote, Err: err}
}

// Read reads bytes that have reached this end. It returns io.EOF once the
// peer closed and every byte it wrote has been read.
func (c *conn) Read(b []byte) (int, error) {
	n, err := c.read(b)
	if err != nil && err != io.EOF {
		err = c.opError("read", err)
	}
	return n, err
}

func (c *conn) read(b []byte) (int, error) {
	if isClosed(c.done) {
		return 0, net.ErrClosed
	}
	dl := c.readDeadline.wait()
	if isClosed(dl) {
		return 0, os.ErrDeadlineExceeded
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	p := c.in
	for {
		p.lock()
		if p.err != nil {
			p.unlock()
			return 0, p.err
		}
		if len(b) == 0 {
			p.unlock()
			return 0, nil
		}
		n, due := p.popLocked(b)
		if n > 0 {
			p.unlock()
			return n, nil
		}
		if len(p.q) == 0 && p.eof {
			p.unlock()
			return 0, io.EOF
		}
		changed := p.waitChanLocked()
		p.unlock()

		var tc <-chan time.Time
		if !due.IsZero() {
			// A new timer, not Reset: moving a timer earlier costs the
			// runtime a sweep of its whole timer heap once that time
			// comes, and a bubble of many thousand conns holds many
			// thousand timers. A stopped one costs a little garbage.
			if timer != nil {
				timer.Stop()
			}
			timer = time.NewTimer(time.Until(due))
			tc = timer.C
		}
		select {
		case <-changed:
		case <-tc:
		case <-c.done:
			return 0, net.ErrClosed
		case <-dl:
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// Write queues b for the peer. It blocks while the direction's buffer is
// full. Concurrent Writes are serialised: one Write's bytes are never
// interleaved with another's. On a silent link (partition, cut, black hole)
// Write succeeds while the buffer has room; the bytes are held and reach
// the peer, in order, after the link heals.
func (c *conn) Write(b []byte) (int, error) {
	n, err := c.write(b)
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

// WriteNow writes as much of b as the direction's buffer has room for
// at once, and returns how many bytes it wrote: it never waits, for room
// or for a Write in progress (it then writes nothing). It is the
// counterpart of one write to a non-blocking socket; the cluster core uses
// it to send a large payload straight from the caller, without a copy.
// Otherwise it behaves as Write.
func (c *conn) WriteNow(b []byte) (int, error) {
	if isClosed(c.done) {
		return 0, c.opError("write", net.ErrClosed)
	}
	if isClosed(c.writeDeadline.wait()) {
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	}
	select {
	case c.wrmu <- struct{}{}:
	default:
		return 0, nil
	}
	defer func() { <-c.wrmu }()
	n, err := c.writeLocked(b, nil, false)
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

func (c *conn) write(b []byte) (int, error) {
	if isClosed(c.done) {
		return 0, net.ErrClosed
	}
	dl := c.writeDeadline.wait()
	if isClosed(dl) {
		return 0, os.ErrDeadlineExceeded
	}
	select {
	case c.wrmu <- struct{}{}:
	case <-c.done:
		return 0, net.ErrClosed
	case <-dl:
		return 0, os.ErrDeadlineExceeded
	}
	defer func() { <-c.wrmu }()
	return c.writeLocked(b, dl, true)
}

// writeLocked writes b, with wrmu held: all of it, waiting for room (until
// dl), if wait is set, else what there is room for now.
func (c *conn) writeLocked(b []byte, dl <-chan struct{}, wait bool) (int, error) {
	p := c.out
	n := 0
	for {
		if c.pair.gone.Load() {
			// The peer gave up during a silence that has healed since
			// (before this Write, or while it waited for room): the
			// bytes reach a socket that is gone and draw a reset.
			c.net.forget(c.pair, ErrConnReset)
			return n, ErrConnReset
		}
		p.lock()
		if err := c.writeErrLocked(); err != nil {
			p.unlock()
			return n, err
		}
		if len(b) == 0 {
			p.unlock()
			return 0, nil
		}
		free := p.limit - p.size
		if free == 0 && !wait {
			p.unlock()
			return n, nil
		}
		if free == 0 {
			// Full, also while the link is silent: the held bytes count,
			// as unacknowledged ones fill a TCP send buffer.
			changed := p.waitChanLocked()
			p.unlock()
			select {
			case <-changed:
			case <-c.done:
				return n, net.ErrClosed
			case <-dl:
				return n, os.ErrDeadlineExceeded
			}
			continue
		}
		p.unlock()

		// Only this goroutine adds to p (wrmu), so free can only grow
		// until we lock again. The Network's lock is never taken while a
		// pipe's is held.
		k := min(len(b)-n, free)
		at, silent := c.net.route(c.src, c.dst, k)

		p.lock()
		if err := c.writeErrLocked(); err != nil {
			p.unlock()
			return n, err
		}
		if silent && !p.holding { // the link healed meanwhile: route again
			p.unlock()
			continue
		}
		// If the link went silent since route, the pipe holds the bytes.
		p.pushLocked(b[n:n+k], at)
		p.unlock()
		n += k
		if n == len(b) {
			return n, nil
		}
	}
}

func (c *conn) writeErrLocked() error {
	switch {
	case isClosed(c.done):
		return net.ErrClosed
	case c.out.err != nil:
		return c.out.err
	case c.out.rclosed:
		return ErrBrokenPipe
	}
	return nil
}

// Close closes this end. The peer reads what was already written, then
// io.EOF; its Writes fail with ErrBrokenPipe. On a silent link the peer
// learns nothing until the link heals; then the bytes held in either
// direction are discarded (this end gave up on them) and the peer's next
// Write resets the conn. Close is idempotent.
func (c *conn) Close() error {
	select {
	case c.closeTok <- struct{}{}:
	default:
		return nil
	}
	close(c.done)
	if c.net.endClosed(c.pair) {
		return nil // held back by the silence
	}
	c.in.closeRead()
	c.out.closeWrite()
	return nil
}

// LocalAddr returns this end's address.
func (c *conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *conn) SetDeadline(t time.Time) error {
	if isClosed(c.done) {
		return c.opError("set", net.ErrClosed)
	}
	c.readDeadline.set(t)
	c.writeDeadline.set(t)
	return nil
}

// SetReadDeadline sets the read deadline.
func (c *conn) SetReadDeadline(t time.Time) error {
	if isClosed(c.done) {
		return c.opError("set", net.ErrClosed)
	}
	c.readDeadline.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if isClosed(c.done) {
		return c.opError("set", net.ErrClosed)
	}
	c.writeDeadline.set(t)
	return nil
}

// pair is one connection: its two ends and the listen addresses that key
// its faults.
type pair struct {
	id             uint64 // creation order: heals schedule held bytes in this order
	from, to       string // dialler's source ("" if anonymous) and listener
	client, server *conn
	ab, ba         *pipe // client to server, server to client
	closedEnds     int   // guarded by the Network's lock
	// holding: the link is silent and both pipes hold their bytes.
	// Guarded by the Network's lock.
	holding bool
	// held: an end was closed (or crashed) while the link was silent; the
	// other end is told when the link heals. Guarded by the Network's lock.
	held bool
	// gone: the link healed after held; the other end's next Write resets
	// the conn, as the RST answering its first segment would.
	gone atomic.Bool
}

// reset tears the connection down: both ends fail with err at once.
func (p *pair) reset(err error) {
	p.ab.fail(err)
	p.ba.fail(err)
}

// isReset reports whether the conn was reset.
func (p *pair) isReset() bool {
	p.ab.lock()
	defer p.ab.unlock()
	return p.ab.err != nil
}
