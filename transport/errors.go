package transport

import (
	"errors"
	"net"
)

// ErrRefused reports that nothing listens at the dialled address. Every
// transport wraps its own cause (ECONNREFUSED, a QUIC handshake that got no
// answer, an unknown memory address) so that errors.Is(err, ErrRefused)
// holds.
var ErrRefused = errors.New("transport: connection refused")

// ErrClosed is returned by operations on a closed listener, conn or
// transport. It is net.ErrClosed, so callers may test either.
var ErrClosed = net.ErrClosed
