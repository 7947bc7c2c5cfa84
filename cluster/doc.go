// Package cluster keeps a set of remote peers updated and accurate.
//
// A Node listens for peers and keeps one link to every remote it knows.
// Add one peer and the node learns, and connects to, every peer that peer
// knows; peers that go silent or crash are removed and redialled with
// capped, jittered backoff; peers that leave politely (Close, CloseRemote)
// are let go and not brought back by gossip. Payloads are opaque bytes sent
// directly from node to node: there is no routing through other nodes.
//
//	n, err := cluster.New("127.0.0.1:0")
//	if err != nil { ... }
//	defer n.Close()
//	n.RemoteAdded(func(r cluster.Remote) { log.Println("joined:", r) })
//	if err := n.Add("10.0.0.7:7946"); err != nil { ... }
//	n.Broadcast([]byte("hello"))
//	for m := range n.Inbox { ... m.From, m.Payload ... }
//
// # Transports and codecs
//
// The node depends only on transport.Transport and codec.Codec. TCP and gob
// are the defaults; WithTransport switches to QUIC (transport/quic),
// yamux-multiplexed TCP (transport/mux) or the in-memory network
// (transport/memory), which runs whole clusters inside testing/synctest.
//
// # Guarantees
//
//   - Delivery: per sender, in order, at most once, while the link is up.
//     Messages still queued for a remote that is removed are dropped and
//     counted, never delivered late over a new link: every message Send or
//     Broadcast accepted is either written or counted in Stats().Dropped.
//   - Send copies the payload, or writes it to the conn, before it
//     returns; the caller may reuse it.
//   - Backpressure: each remote has a bounded send queue (WithSendQueueSize).
//     Send waits while it is full, until its context or the network timeout
//     ends, then returns an error. Broadcast never lets one slow remote delay
//     the others: it waits for all full queues at once, under one deadline
//     (BroadcastContext takes a context too), and each remote gets the
//     payload as soon as its queue has room.
//   - Liveness is judged on the reading side, only while the reader waits on
//     the network: an application slow to drain Inbox stops the node reading
//     (backpressure reaches the senders) but removes nobody.
//   - Receiving: by default on Inbox, each Message the application's own.
//     WithHandler calls a function instead, on each remote's reader, with
//     the message lent until it returns (no copy, no handoff): in order per
//     remote, concurrently across remotes; a slow handler is a full Inbox
//     for its remote alone.
//   - Identity: a remote is its advertised address plus the random instance
//     id its node drew at start. A restarted peer replaces its old entry
//     (RemoteRemoved, then RemoteAdded), but only once the claimed address
//     answers a dial with the new instance: a stranger cannot evict a
//     healthy peer.
//   - Callbacks run on one goroutine per node, in the order events
//     happened, never under a lock; a slow callback delays only later
//     callbacks.
//   - Close returns after every goroutine of the node has stopped.
//   - Transient Accept errors (EMFILE, a connection reset before it was
//     accepted) are logged and retried with backoff from 5 ms to 1 s; only
//     Close ends the accept loop.
//
// # Errors
//
// Methods return ErrClosed, ErrUnknownRemote, ErrSelf, ErrMessageTooLarge,
// ErrSendTimeout and ErrNoSeeds; a failed handshake is a *HandshakeError
// matching ErrHandshake and one of ErrIncompatible, ErrUnauthorized,
// ErrNotPeerkit, ErrDeclined or the I/O error that ended it; a failed dial
// matches ErrUnreachable and the transport's error (transport.ErrRefused
// when nothing listens). Match them with errors.Is and errors.As.
//
// The wire protocol is specified in PROTOCOL.md at the root of the module.
//
// # Inside the package
//
// The files read top-down; each uses only the ones below it. node.go holds
// Node, New, Close and the public methods, with send.go (Send, Broadcast),
// seeds.go (Join, WithSeeds and the rejoin loop), secrets.go (the keyring
// and its rotation), advertise.go (the address a node on a wildcard
// advertises), meta.go, stats.go and events.go (the callback dispatcher
// and the Event type). Below them,
// membership.go runs the table's events under the node's lock and carries
// out its actions (timers, dials, closing links), and connect.go makes
// links: it asks the table whether to dial or admit, runs the handshake of
// dial.go (outgoing) or handshake.go (both sides' bytes: hellos, proofs,
// verdicts), and reports the result. link.go, reader.go and writer.go are
// one live connection: a send queue (queue.go; small payloads wait in it
// as whole frames), a reader and a writer (direct.go: a large payload
// written by Send itself while the writer is idle), which know only their
// linkConfig and tell their owner (the node) what happens through the
// linkOwner interface. At the bottom, without I/O: table.go
// and rules.go (the membership table and its rules, as events in and
// actions out), backoff.go, payload.go (pooled message copies), remote.go,
// options.go and errors.go. Byte layouts live in internal/wire.
package cluster
