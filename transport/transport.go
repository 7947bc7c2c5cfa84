// Package transport defines how peerkit reaches other nodes.
//
// A Transport yields reliable, ordered, bidirectional byte streams as
// net.Conn values: one TCP connection, one yamux stream, one QUIC stream or
// one in-memory pipe. The cluster core depends only on this interface, so a
// deployment chooses its transport with one option and the core's behaviour
// does not change.
//
// Every implementation in this module passes the conformance suite in
// package transporttest; third-party transports should run it too.
package transport

import (
	"context"
	"crypto/tls"
	"net"
)

// Transport opens listeners and dials streams.
//
// Implementations must be safe for concurrent use. Dial must honour the
// context's deadline and cancellation. A Dial to an address where nothing
// listens fails with an error that matches ErrRefused under errors.Is.
// Closing a listener returned by Listen unblocks its Accept, which then
// returns an error matching net.ErrClosed.
//
// A Transport that holds shared state (pooled sessions, sockets) also
// implements io.Closer. The cluster core never closes a Transport it was
// given: whoever created it closes it, after the nodes using it are closed.
type Transport interface {
	// Listen starts listening on addr ("host:port"; port 0 picks a free one).
	Listen(addr string) (net.Listener, error)
	// Dial opens one new stream to the listener at addr.
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// TLSConn is implemented by conns that run over TLS (tcp and mux with TLS,
// and every QUIC stream). Authentication binds its proof to the TLS session
// through ConnectionState().ExportKeyingMaterial, so that a relay in the
// middle cannot reuse it.
type TLSConn interface {
	net.Conn
	ConnectionState() tls.ConnectionState
}

// NowWriter is implemented by conns that can write without waiting, as
// one write to a non-blocking socket does: WriteNow writes as much of b as
// the conn takes at once and returns how many bytes it wrote, possibly
// none; it never waits for room. An error means the conn is broken. The
// cluster core uses it, when a link's writer is idle, to send a large
// payload straight from Send's caller instead of copying it into the send
// queue, and a small payload that answers the remote (the remote has sent
// a message since the last one written so) instead of handing it to the
// writer: fewer handoffs on round trips, but no batching for streams that
// go both ways at once. (The core writes large payloads to plain TCP
// sockets that way itself; the memory transport's conns implement
// NowWriter.)
type NowWriter interface {
	net.Conn
	WriteNow(b []byte) (int, error)
}

// SourceDialer is implemented by transports that want to know which node is
// dialling: the memory network uses it to apply per-link faults (partitions,
// latency, cut links) between two listen addresses. from is the dialling
// node's own advertised listen address. The cluster core calls DialFrom
// instead of Dial when the transport offers it.
type SourceDialer interface {
	DialFrom(ctx context.Context, from, addr string) (net.Conn, error)
}
