// Package netcond compares peerkit's transports over a real network: one
// host serves (Serve), the other connects (Connect) and measures, for each
// transport, one-way throughput in both directions, the round trip of a
// small message, the round trip of small messages beside a bulk transfer
// (head-of-line blocking), and the time to remove a host that goes silent.
// The report (bench/cmd/report) runs it between two network namespaces
// under the kernel's faults (RunNamespaces: nftables random loss, a tbf
// bandwidth cap, netem delay where the kernel has it), or between two
// machines with -serve and -connect.
//
// # Control protocol
//
// The measuring side (the client) opens one TCP connection to the serving
// side and speaks lines of ASCII text, at most MaxLine bytes each with the
// newline; every request gets exactly one reply line, "OK [values]" or
// "ERR reason", and the client sends the next request only after the reply.
// The server reads each request with an idle deadline (IdleTimeout) and
// closes the connection on a line too long, a malformed request or an
// unknown command, after an ERR reply saying why. It serves at most
// MaxSessions connections at once. Requests:
//
//	HELLO 1                      OK peerkit-netcond 1
//	NODES <transport> <k> <profile>
//	                             closes the session's nodes, starts k (1..MaxNodes)
//	                             new ones on the transport (tcp, tcp+tls, quic,
//	                             mux, mux+tls), listening on the address the
//	                             client reached the server at, port 0;
//	                             profile "default" (peerkit's defaults) or "fast"
//	                             (heartbeat 100 ms, network timeout 1 s).
//	                             OK <addr1> ... <addrk>
//	MODE <i> sink                node i counts what it receives (the default)
//	MODE <i> echo <max>          node i sends back every payload of at most max
//	                             bytes to its sender and counts the others. OK
//	WAIT <i> <ms>                waits up to ms milliseconds for node i to
//	                             receive an empty payload (the end of a run).
//	                             OK <msgs> <bytes> (received since the last end)
//	SEND <i> <n> <size> <addr>   node i sends n payloads of size bytes to its
//	                             remote addr (waiting up to 5 s for its link),
//	                             then an empty one. OK once all are queued
//	SILENCE                      the session's nodes go silent: nftables drops
//	                             every packet from or to their ports and their
//	                             remotes' (-silence nft), or their conns stop
//	                             reading and swallow writes (-silence app, no
//	                             root needed). OK <how>
//	UNSILENCE                    undoes SILENCE. OK
//	CLOSE                        closes the session's nodes. OK
//	BYE                          OK, then the server closes the connection.
//
// Numbers are decimal; n is at most MaxRun, size at most MaxSize, ms at most
// ten minutes. A session's nodes, and SILENCE, end with the connection.
package netcond
