// Package quic is a peerkit transport over QUIC (github.com/quic-go/quic-go):
// one QUIC connection per remote address, one bidirectional stream per
// Dial, TLS 1.3 always.
//
//	conf := &tls.Config{Certificates: certs, RootCAs: pool} // production
//	tr, err := quic.New(conf)
//
//	conf, err := quic.InsecureLocalTLS()                     // local only!
//	tr, err := quic.New(conf,
//		quic.WithHandshakeTimeout(2*time.Second),
//		quic.WithIdleTimeout(15*time.Second),      // a silent peer is dead
//		quic.WithIdleConnTimeout(time.Minute),     // an unused connection closes
//		quic.WithMaxStreams(256),
//	)
//	defer tr.Close()
//
// # TLS
//
// New requires a *tls.Config; there is no silent fallback. One config
// serves and dials. It is cloned, MinVersion is forced to TLS 1.3 and
// NextProtos defaults to NextProto ("peerkit"). When dialling, ServerName
// is set from the dialled host if the config has none and verifies
// certificates. InsecureLocalTLS makes a self-signed certificate and skips
// verification: for tests and local experiments only. Every conn
// implements transport.TLSConn and reports its connection's TLS state.
//
// # Connections and streams
//
// Every connection a Transport dials goes out from one UDP socket, opened
// by the first Dial and closed by Transport.Close, so a node holds one
// descriptor for all its peers. The first Dial to an address opens a QUIC
// connection; later Dials to that address open streams on it. Concurrent
// first Dials wait for the same handshake rather than racing to make two
// connections. A connection that has died (the peer closed it, it idled
// out because keep-alives went unanswered, or the peer's port answered
// with an ICMP port unreachable) is forgotten when its last stream is
// closed or when the next Dial finds it dead, which then makes a new one.
//
// A connection is in use while a conn dialled on it is open. Once the last
// one is closed the connection stays for WithIdleConnTimeout
// (DefaultIdleConnTimeout, 30 s): a Dial within that time opens its stream
// on it; after it the connection is closed, with a CONNECTION_CLOSE so that
// the peer frees it too, and forgotten. This is not WithIdleTimeout
// (QUIC's max_idle_timeout, DefaultIdleTimeout, 10 s), which declares a
// connection dead when nothing at all has come from the peer for that
// long; keep-alives every third of it mean a live peer never reaches it,
// so only WithIdleConnTimeout ends a connection that is merely unused.
// Connections counts the connections held, in use or idle.
//
// quic-go shows a stream to the peer's AcceptStream only once data arrives
// on it, so Dial writes a one-byte stream header (0x01) at once and the
// accepting side's first Read consumes and checks it; the application
// never sees it.
//
// A listener owns one UDP socket. It accepts connections, accepts the
// streams of each, and delivers all streams through Accept. It needs no
// file descriptor per connection, so running out of them does not touch
// it. An accept error that is not a close is logged with WithLogger's
// logger (default: no log) and retried after a delay of 5 ms doubling to
// 1 s; if the socket itself fails for good, which ends quic-go's listener,
// that is logged and the listener closes. Its Close
// closes every accepted connection with a CONNECTION_CLOSE, so that dialled
// peers learn it at once, and waits for its goroutines. Transport.Close
// closes all connections and listeners and waits for every goroutine the
// package started.
//
// Close on a conn sends FIN and cancels reading (STOP_SENDING), so the
// peer's later Writes fail and both sides free the stream.
//
// # Refused dials
//
// A Dial where nothing listens fails with an error matching
// transport.ErrRefused (and syscall.ECONNREFUSED when an ICMP answer said
// so). quic-go does not look for ICMP errors, and an unconnected UDP socket
// hears of them only when asked: on Linux the dial socket sets IP_RECVERR
// (and IPV6_RECVERR), which makes the kernel fail the socket's next read
// or write with the error and queue it, with the address it concerns. The
// transport absorbs that failure (quic-go would take it as fatal to every
// connection on the socket), reads the queue and ends the handshake to
// that address at once; an ICMP error for one peer never disturbs the
// connections to others, and a port unreachable for a live connection's
// packets closes that connection. Where no ICMP answer comes (it is
// filtered, or on systems other than Linux, where unconnected sockets
// never see one) the Dial fails after WithHandshakeTimeout
// (DefaultHandshakeTimeout, 3 s) without an answer, also as ErrRefused,
// with quic-go's timeout error beneath.
//
// Time until a dial to a closed loopback port fails (BenchmarkDialRefused,
// Linux, 2 cores): one socket with the error queue read, as Dial does,
// 0.20 ms; a connected socket per remote, as Dial did before, 0.27 ms; one
// socket handed to quic-go as is, 3001 ms (the handshake timeout). One
// socket costs nothing in refusal time and saves a descriptor and a
// quic-go Transport (with its reading goroutine) per remote.
//
// quic-go may log once per process that it could not enlarge the UDP
// socket buffers; set QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING=true to
// silence it.
package quic
