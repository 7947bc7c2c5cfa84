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

// dial opens a conn to addr and runs the dialer's side of the handshake.
// It returns the conn, ready for a link, if the listener accepted, and the
// listener's hello and verdict whenever it got them.
func (n *Node) dial(ctx context.Context, addr string, kind dialKind) (net.Conn, *wire.Hello, byte, error) {
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
		return nil, nil, 0, fmt.Errorf("cluster: dial %s: %w", addr, err)
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
		cause = ErrRefused
	}
	if reason == "" {
		return fmt.Errorf("%w (%s)", cause, wire.VerdictName(code))
	}
	return fmt.Errorf("%w (%s: %q)", cause, wire.VerdictName(code), reason)
}
