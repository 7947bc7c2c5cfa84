// Package mux is a peerkit transport that multiplexes streams over one TCP
// (optionally TLS) connection per remote address, with
// github.com/hashicorp/yamux.
//
//	tr, err := mux.New()                          // plain TCP
//	tr, err := mux.New(mux.WithTLS(conf))         // TLS, same config both sides
//	cfg := yamux.DefaultConfig()
//	cfg.MaxStreamWindowSize = 1 << 20
//	tr, err := mux.New(mux.WithConfig(cfg))       // tune yamux
//	tr, err := mux.New(mux.WithIdleConnTimeout(time.Minute))
//	defer tr.Close()
//
// # Sessions
//
// The first Dial to an address opens a TCP conn and a yamux client session
// on it; every later Dial to the same address opens one more stream on that
// session. Concurrent first Dials wait for the same session rather than
// racing to create two. A session that has died (the conn was closed or
// broke, or yamux's keep-alive ping failed) is noticed on the next Dial,
// dropped and replaced by a fresh one. Streams the remote opens on a session
// we dialled are not delivered anywhere (a peer that wants to reach us
// dials our listener).
//
// A session is in use while a conn dialled on it is open. Once the last one
// is closed the session stays for WithIdleConnTimeout
// (DefaultIdleConnTimeout, 30 s): a Dial within that time opens its stream
// on it; after it the session and its TCP conn are closed and forgotten, so
// nothing stays open to a peer no longer used. Sessions counts the
// sessions held, in use or idle.
//
// A listener accepts TCP conns, runs a yamux server session on each, and
// delivers the streams of all its sessions through Accept. Its accept loop
// retries an error other than a closed socket (the process out of file
// descriptors for a moment, EMFILE; a conn reset before it was accepted)
// after a delay of 5 ms doubling to 1 s, and logs each with WithLogger's
// logger (default: no log); only Close ends it. With TLS the TCP listener
// beneath does the same.
//
// Transport.Close closes every session it dialled and every listener it
// made, and waits for the goroutines the package started. Each yamux
// session also runs goroutines of its own; yamux's keep-alive goroutine
// stops shortly after (not during) the session's Close.
//
// # Configuration
//
// WithConfig takes a *yamux.Config, validated with yamux.VerifyConfig
// by New. The transport keeps a copy. When the config sets neither
// LogOutput nor Logger (and by default) yamux's log goes to io.Discard
// rather than to stderr. WithTLS behaves as tcp.WithTLS: one config serves
// and dials, and ServerName is filled from the dialled host when empty and
// certificates are verified. Streams over TLS implement transport.TLSConn
// and report the state of the session's TLS conn.
//
// # Errors
//
// A Dial where nothing listens fails with an error matching
// transport.ErrRefused (and syscall.ECONNREFUSED). Dial, Listen and Accept
// after Close fail with errors matching net.ErrClosed.
package mux
