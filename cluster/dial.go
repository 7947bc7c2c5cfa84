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
	if n.closing {
		n.mu.Unlock()
		return ErrClosed
	}
	e := n.remotes[addr]
	if e != nil && e.link != nil && kind != dialVerify {
		n.mu.Unlock()
		return nil
	}
	if e != nil && e.attempt != nil {
		att := e.attempt
		n.mu.Unlock()
		select {
		case <-att.done:
			return att.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	n.entryLocked(addr).attempt = &attempt{done: make(chan struct{})}
	n.mu.Unlock()
	return n.runAttempt(ctx, addr, kind)
}

// runAttempt performs the dial registered as addr's attempt and publishes
// its result to whoever waits for it.
func (n *Node) runAttempt(ctx context.Context, addr string, kind dialKind) error {
	err := n.dial(ctx, addr, kind)
	n.mu.Lock()
	e := n.remotes[addr]
	att := e.attempt
	e.attempt = nil
	att.err = err
	close(att.done)
	n.gcLocked(e)
	n.mu.Unlock()
	return err
}

// dial opens a conn to addr and runs the handshake; on success the link is
// live when it returns.
func (n *Node) dial(ctx context.Context, addr string, kind dialKind) error {
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
		return fmt.Errorf("cluster: dial %s: %w", addr, err)
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
		if code == wire.VerdictGone {
			n.mu.Lock()
			n.tombstoneLocked(h.Addr, h.Instance)
			if e := n.remotes[h.Addr]; e != nil {
				e.loop = false
			}
			n.mu.Unlock()
		}
		return &HandshakeError{Addr: addr, Cause: err}
	}
	conn.SetDeadline(time.Time{})
	l, old := n.register(h, conn)
	if old != nil {
		old.shutdown(errReplaced)
	}
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

// register makes the accepted conn the remote's live link. A live link to
// an earlier instance at the same address is replaced: the new instance
// answered a dial to that address, which is the proof that it owns it.
func (n *Node) register(h *wire.Hello, conn net.Conn) (l, old *link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		return nil, nil
	}
	e := n.entryLocked(h.Addr)
	if e.link != nil {
		if e.link.peer.instance == h.Instance {
			return nil, nil
		}
		old = n.detachLocked(e)
	}
	l = newLink(n, n.peerForLocked(e, h), conn, true, h.Capabilities()&n.opts.capabilities)
	n.attachLocked(e, l)
	return l, old
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
		e := n.remotes[addr]
		up := e != nil && e.link != nil
		ch := n.upCh
		closed := n.closing
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
