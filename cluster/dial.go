package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/peerkit/peerkit/internal/wire"
	"github.com/peerkit/peerkit/transport"
)

// dialKind says why a dial happens; it decides what a failure means.
type dialKind uint8

const (
	dialExplicit  dialKind = iota // Add: overrides tombstones
	dialGossip                    // a peer list named the address
	dialReconnect                 // the reconnect loop
	dialVerify                    // a new instance claimed the address: dial it back
)

// errPending means the listener already has (or is making) a link with
// this node on another connection; errGone that it closed this node on
// purpose.
var (
	errPending = errors.New("link pending on another connection")
	errGone    = errors.New("peer closed this node on purpose")
)

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
	theirs, code, err := n.dial(ctx, addr, kind)
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

// dial opens a conn to addr and runs the handshake; on success the link is
// live when it returns. It returns the listener's hello and verdict, when
// it got them.
func (n *Node) dial(ctx context.Context, addr string, kind dialKind) (*wire.Hello, byte, error) {
	// ctx ends when the node closes: internal dials use n.ctx, and
	// AddContext joins its caller's context to it.
	ctx, cancel := context.WithTimeout(ctx, n.opts.handshakeTimeout)
	defer cancel()
	var conn net.Conn
	var err error
	if sd, ok := n.opts.transport.(transport.SourceDialer); ok {
		conn, err = sd.DialFrom(ctx, n.self.Addr, addr)
	} else {
		conn, err = n.opts.transport.Dial(ctx, addr)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: dial %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	unwatch := n.watch(ctx, conn)
	h, code, reason, err := n.dialHandshake(conn, kind == dialExplicit)
	unwatch()
	if err == nil && code != wire.VerdictAccept {
		err = verdictError(code, reason)
	}
	if err != nil {
		conn.Close()
		if kind == dialExplicit || !errors.Is(err, errPending) {
			n.stats.handshakeFailure(err)
		}
		if h != nil {
			addr = h.Addr
		}
		return h, code, &HandshakeError{Addr: addr, Cause: err}
	}
	conn.SetDeadline(time.Time{})
	return h, code, n.register(h, conn)
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
		l := newLink(n, p, conn, dialed, h.Capabilities()&n.opts.capabilities)
		n.links[l] = struct{}{}
		return l
	}
}

func verdictError(code byte, reason string) error {
	var cause error
	switch code {
	case wire.VerdictDuplicate, wire.VerdictConflict:
		cause = errPending
	case wire.VerdictSelf:
		cause = ErrSelf
	case wire.VerdictIncompatible:
		cause = ErrIncompatible
	case wire.VerdictUnauthorized:
		cause = ErrUnauthorized
	case wire.VerdictGone:
		cause = errGone
	default:
		cause = ErrRefused
	}
	if reason == "" {
		return fmt.Errorf("%w (%s)", cause, wire.VerdictName(code))
	}
	return fmt.Errorf("%w (%s: %q)", cause, wire.VerdictName(code), reason)
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
