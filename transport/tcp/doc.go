// Package tcp is peerkit's default transport: every Dial is one TCP
// connection, optionally wrapped in TLS.
//
// A Transport is stateless (it pools nothing), so it needs no Close and may
// be shared by any number of nodes.
//
//	tr, err := tcp.New()                            // plain TCP
//	tr, err := tcp.New(tcp.WithTLS(conf))           // TLS, same config both sides
//	tr, err := tcp.New(
//		tcp.WithKeepAlive(30*time.Second),          // negative disables
//		tcp.WithNoDelay(false),                     // allow Nagle batching
//		tcp.WithDialTimeout(3*time.Second),
//		tcp.WithLogger(logger),                     // default: no log
//	)
//
// # TLS
//
// WithTLS uses one *tls.Config for both directions: Listen serves its
// Certificates (and applies its ClientAuth/ClientCAs), Dial verifies the
// server against its RootCAs. When dialling, if the config has no
// ServerName and does not set InsecureSkipVerify, the transport sets
// ServerName (on a clone) to the host part of the dialled address, so that
// certificates are verified against the name or IP the caller dialled.
// The config is cloned once at New; later changes by the caller are not seen.
//
// Conns made with TLS implement transport.TLSConn (they are *tls.Conn), and
// the TLS handshake completes inside Dial and inside the first I/O on an
// accepted conn. The listener runs each server-side handshake on its own
// goroutine (at most 64 at once, each bounded by HandshakeTimeout), so a
// slow client never blocks Accept, and Accept returns only conns whose
// handshake succeeded.
//
// # Accept errors
//
// Without TLS, the listener's Accept returns every error of the socket to
// the caller's accept loop, as net.Listener does: a transient one (the
// process out of file descriptors for a moment, EMFILE; a conn reset
// before it was accepted) is the caller's to retry. With TLS the listener
// runs its own accept loop, which retries such errors after a delay of
// 5 ms doubling to 1 s and logs each with WithLogger's logger; only Close
// ends it, so a moment of descriptor exhaustion never stops the listener
// for good.
//
// As with any *tls.Conn, a Write that times out leaves the conn unable to
// write again; close it and dial anew.
//
// # Errors
//
// A Dial to a port where nothing listens fails with an error that matches
// transport.ErrRefused and, beneath it, syscall.ECONNREFUSED and the
// *net.OpError from package net.
package tcp
