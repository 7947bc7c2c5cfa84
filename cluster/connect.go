package cluster

import (
	"context"
	"net"
	"time"

	"github.com/peerkit/peerkit/internal/wire"
)

// Making links: the node asks the table whether to dial or admit, does the
// handshake (dial.go, handshake.go), and hands the table the result.

// connect makes sure a link to addr is up: it returns at once if one is,
// waits for a dial in progress, or dials.
func (n *Node) connect(ctx context.Context, addr string, kind dialKind) error {
	n.mu.Lock()
	res := n.table.connect(addr, kind, time.Now())
	var att *attempt
	switch res {
	case connectDial:
		n.attempts[addr] = &attempt{done: make(chan struct{})}
	case connectWait:
		att = n.attempts[addr]
	}
	n.mu.Unlock()
	switch res {
	case connectClosed:
		return ErrClosed
	case connectUp:
		return nil
	case connectWait:
		select {
		case <-att.done:
			return att.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return n.runDial(ctx, addr, kind)
}

// runDial performs the dial the table registered for addr and tells the
// table, and whoever waits for it, how it ended.
func (n *Node) runDial(ctx context.Context, addr string, kind dialKind) error {
	conn, theirs, code, err := n.dial(ctx, addr, kind)
	if err == nil {
		err = n.register(theirs, conn)
	}
	if err != nil && kind == dialReconnect {
		n.log.Debug("reconnect failed", "remote", addr, "err", err)
	}
	n.step(func(t *table, now time.Time) {
		t.dialDone(addr, kind, err, code, theirs, now)
		if att := n.attempts[addr]; att != nil {
			delete(n.attempts, addr)
			att.err = err
			close(att.done)
		}
	})
	return err
}

// register makes the accepted conn the remote's live link and starts it.
func (n *Node) register(h *wire.Hello, conn net.Conn) error {
	var l *link
	acts := n.stepLater(func(t *table, now time.Time) {
		l = t.dialed(h, n.linkMaker(conn, true, h), now)
	})
	n.run(acts) // shuts down a link to an earlier instance it replaced
	if l == nil {
		conn.Close()
		if n.isClosed() {
			return ErrClosed
		}
		return nil // a link with this instance was already up (an alias of its address)
	}
	l.start()
	n.log.Info("remote added", "remote", h.Addr, "instance", h.Instance, "dialed", true)
	return nil
}

// linkMaker returns the constructor of the link on conn that the table
// calls if it admits the peer that sent h. It runs under the node's lock.
func (n *Node) linkMaker(conn net.Conn, dialed bool, h *wire.Hello) func(*peer) *link {
	return func(p *peer) *link {
		l := newLink(n.linkCfg, p, conn, dialed, h.Capabilities()&n.opts.capabilities)
		n.links[l] = struct{}{}
		return l
	}
}

// serveConn runs the handshake on an accepted conn and, if the table
// admits the peer, starts its link.
func (n *Node) serveConn(conn net.Conn) {
	stop := n.watch(nil, conn)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	conn.SetDeadline(time.Now().Add(n.opts.handshakeTimeout))
	theirs, proof, ok := n.listenHandshake(conn)
	if !ok {
		return
	}
	l := n.admit(conn, theirs, proof)
	if l == nil {
		return
	}
	stop()
	stopped = true
	conn.SetDeadline(time.Time{})
	l.start()
	n.log.Info("remote added", "remote", theirs.Addr, "instance", theirs.Instance, "dialed", false)
}

// admit asks the table whether the peer that sent theirs may have a link
// on conn, and answers with the verdict (and proof, with a secret). It
// returns the live link, not yet started, or nil if the peer was declined
// or the verdict could not be written.
func (n *Node) admit(conn net.Conn, theirs *wire.Hello, proof []byte) *link {
	var l *link
	var code byte
	var reason string
	acts := n.stepLater(func(t *table, now time.Time) {
		l, code, reason = t.admit(theirs, n.linkMaker(conn, false, theirs), now)
	})
	if code != wire.VerdictAccept {
		conn.Write(append(wire.AppendVerdict(nil, code, reason), proof...))
		conn.Close()
		n.log.Debug("handshake declined", "remote", theirs.Addr, "verdict", wire.VerdictName(code), "reason", reason)
		n.run(acts) // a conflict's dial-back
		return nil
	}
	n.run(acts)
	if _, err := conn.Write(append(wire.AppendVerdict(nil, wire.VerdictAccept, ""), proof...)); err != nil {
		l.shutdown(err)
		l.dropQueued()   // what a Send or Broadcast queued meanwhile: dropped, counted
		n.linkStopped(l) // its goroutines never ran
		return nil
	}
	return l
}

// waitUp waits until a link to addr is up, for at most d.
func (n *Node) waitUp(ctx context.Context, addr string, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		n.mu.Lock()
		up := n.table.up(addr)
		ch := n.upCh
		closed := n.table.closing
		n.mu.Unlock()
		if up {
			return true
		}
		if closed {
			return false
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		case <-n.ctx.Done():
			return false
		}
	}
}
