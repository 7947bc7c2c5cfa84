package cluster

import (
	"errors"
	"fmt"
	"net"
)

// Errors returned by Node methods. Match them with errors.Is.
var (
	// ErrClosed: the node is closed. It matches net.ErrClosed too.
	ErrClosed = fmt.Errorf("cluster: node closed: %w", net.ErrClosed)
	// ErrUnknownRemote: the remote is not (or no longer) connected to this
	// node: never added, removed, or an earlier instance of a restarted peer.
	ErrUnknownRemote = errors.New("cluster: unknown remote")
	// ErrSelf: Add was given this node's own address.
	ErrSelf = errors.New("cluster: cannot add self")
	// ErrMessageTooLarge: the payload exceeds WithMaxMessageSize.
	ErrMessageTooLarge = errors.New("cluster: message exceeds size limit")
	// ErrSendTimeout: the remote's send queue stayed full for the network
	// timeout.
	ErrSendTimeout = errors.New("cluster: send queue full past the network timeout")
	// ErrHandshake: a handshake failed. The error returned is a
	// *HandshakeError, which matches ErrHandshake and unwraps to its cause.
	ErrHandshake = errors.New("cluster: handshake failed")
	// ErrUnreachable: Add could not open a connection to the address: the
	// transport's dial failed (nothing listens there, which also matches
	// transport.ErrRefused; no route; a name that does not resolve; a
	// timeout). The error wraps the transport's.
	ErrUnreachable = errors.New("cluster: peer unreachable")
)

// Handshake failure causes, the Cause of a *HandshakeError. They are
// matched with errors.Is on the error Add returns.
var (
	ErrIncompatible = errors.New("incompatible peer (protocol version or codec)")
	ErrUnauthorized = errors.New("authentication failed")
	ErrNotPeerkit   = errors.New("peer does not speak the peerkit protocol")
	// ErrDeclined: the peer completed the handshake and declined the link:
	// it is at its remote limit (busy), closing, or closed this node on
	// purpose (gone; only an explicit Add on its side brings it back). Not
	// to be confused with transport.ErrRefused, which means that nothing
	// listens at the address (see ErrUnreachable).
	ErrDeclined = errors.New("declined by peer")
)

// HandshakeError describes a failed handshake with Addr.
type HandshakeError struct {
	Addr  string // the address dialled or the peer's claimed address
	Cause error  // one of the causes above, a verdict, or an I/O error
}

// Error describes the failure.
func (e *HandshakeError) Error() string {
	return fmt.Sprintf("cluster: handshake with %s: %v", e.Addr, e.Cause)
}

// Unwrap returns the cause.
func (e *HandshakeError) Unwrap() error { return e.Cause }

// Is reports whether target is ErrHandshake.
func (e *HandshakeError) Is(target error) bool { return target == ErrHandshake }
