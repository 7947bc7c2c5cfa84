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
)

// Handshake failure causes, the Cause of a *HandshakeError. They are
// matched with errors.Is on the error Add returns.
var (
	ErrIncompatible = errors.New("incompatible peer (protocol version or codec)")
	ErrUnauthorized = errors.New("authentication failed")
	ErrNotPeerkit   = errors.New("peer does not speak the peerkit protocol")
	ErrRefused      = errors.New("refused by peer")
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
