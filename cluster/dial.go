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
	errGone    = fmt.Errorf("%w: the peer closed this node on purpose", ErrDeclined)
)

// dial opens a conn to addr and runs the dialer's side of the handshake.
// It returns the conn, ready for a link, if the listener accepted, and the
// listener's hello and verdict whenever it got them.
func (n *Node) dial(ctx context.Context, addr string, kind dialKind) (net.Conn, *wire.Hello, byte, error) {
	// ctx ends when the node closes: internal dials use n.ctx, and
	// AddContext joins its caller's context to it.
	parent := ctx
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
		n.stats.dialFailures.Add(1)
		err = fmt.Errorf("%w: dial %s: %w", ErrUnreachable, addr, err)
		n.stats.failure(addr, "dial", true, err)
		return nil, nil, 0, err
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
			n.stats.failure(addr, "handshake", true, err)
		}
		if h != nil {
			addr = h.Addr
		}
		if perr := ended(parent); perr != nil && code == 0 {
			// The caller's context ended the handshake: say so, not only
			// the I/O error the cut made.
			err = fmt.Errorf("%w (%v)", perr, err)
		}
		return nil, h, code, &HandshakeError{Addr: addr, Cause: err}
	}
	conn.SetDeadline(time.Time{})
	return conn, h, code, nil
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
		cause = ErrDeclined
	}
	if reason == "" {
		return fmt.Errorf("%w (%s)", cause, wire.VerdictName(code))
	}
	return fmt.Errorf("%w (%s: %q)", cause, wire.VerdictName(code), reason)
}

// ended returns ctx's error, or DeadlineExceeded once its deadline has
// passed even if its timer has not fired yet (a conn deadline set from it
// may fire first).
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}
