// Package memory is an in-process network simulator for peerkit: a
// transport.Transport (and transport.SourceDialer) whose conns are
// in-memory byte streams, with faults a test can inject: partitions, cut
// and reset links, crashed and black-holed nodes, latency with jitter and
// bandwidth limits.
//
// It is built for whole-cluster tests inside testing/synctest bubbles.
// Everything that blocks (Accept, Dial, Read, Write, the locks) waits on
// channels created in the bubble, so blocked goroutines are durably
// blocked and virtual time advances; latency and bandwidth are timestamps
// on the bytes, waited for with timers, so a delay of one hour takes no
// real time and is exact. The Network starts no goroutines and does no
// real I/O. Create the Network inside the bubble that uses it.
//
//	synctest.Test(t, func(t *testing.T) {
//		nw := memory.NewNetwork(memory.WithSeed(42))
//		defer nw.Close()
//		nw.SetLatency(10*time.Millisecond, 0)
//		a, _ := cluster.New("a:1", cluster.WithTransport(nw))
//		...
//		nw.Partition([]string{"a:1"}, []string{"b:1", "c:1"})
//		time.Sleep(time.Minute) // virtual
//		nw.Heal()
//	})
//
// # Conns
//
// Each conn is a full net.Conn: two bounded byte buffers (WithBufferSize,
// 256 KiB by default, counting bytes in flight, held and unread), so a writer
// blocks while its reader does not read. Concurrent Writes are serialised
// and never interleave; deadlines behave like net.Pipe's; Close is
// idempotent. After Close, Read and Write fail with errors matching
// net.ErrClosed. After the peer closed, Read returns the remaining bytes,
// then io.EOF, and Write fails with ErrBrokenPipe. A reset conn fails with
// ErrConnReset on both sides. Errors are *net.OpError values; timeouts
// satisfy net.Error with Timeout() true and match os.ErrDeadlineExceeded.
// Conns are also transport.NowWriters: WriteNow writes what the buffer
// has room for and never waits, as one write to a non-blocking socket.
//
// # Addresses and faults
//
// Addresses are "host:port" strings with free-form hosts ("node1:7000").
// Faults are keyed by listen addresses: the addr given to Listen (as
// returned by its Addr, for port 0) and the from given to DialFrom. A conn
// belongs to the link between its dialler's from and its listener's
// address. Conns made by Dial have an anonymous source: only the faults of
// the dialled node (BlackHole, Kill) and the network-wide latency and
// bandwidth apply to them. Every fault applies at once to existing conns
// and to new dials, and all fault methods are safe for concurrent use.
//
// Three kinds of failure, as on a real network:
//
//   - Silent (Partition, CutLink, BlackHole): bytes stall, nothing errors;
//     as with TCP, they arrive after the heal unless an endpoint gave up
//     and closed first. While the link is silent nothing is delivered on
//     its conns: the readers see silence. Bytes written meanwhile are held,
//     as a TCP sender keeps unacknowledged segments, and so are the bytes
//     in flight when the link went silent (bytes already delivered to the
//     reader's buffer stay readable). Held bytes count against the
//     direction's buffer: Write succeeds while it has room, then blocks
//     until the heal (or its deadline, or Close), like a write into a full
//     TCP send buffer. When the link heals the held bytes leave in one
//     burst per direction and arrive in order, with no gap, after the
//     link's latency (and bandwidth delay) counted from the heal. New
//     dials hang until the link heals (they then complete) or their
//     context ends. A Close or a Kill at one end does not cross a silent
//     link either: the other end sees nothing until the link heals; then
//     the bytes held in both directions are discarded (the closed end gave
//     up on them) and the other end's next Write resets the conn (both
//     ends fail with ErrConnReset), as the RST answering a segment sent to
//     a socket that no longer exists would. Heartbeats and timeouts are
//     what detects silence; that is what these faults test.
//   - Reset (ResetLink): existing conns between two nodes fail at once on
//     both sides with ErrConnReset; new dials work.
//   - Crash (Kill): every conn of the node is reset on both sides at once,
//     its listener closes, dials to it are refused (transport.ErrRefused)
//     and dials from it fail (ErrHostDown) until something listens there
//     again.
//
// # Latency and bandwidth
//
// No goroutine carries the bytes: each Write is stamped with its delivery
// time and the reader waits for it with a timer. For k bytes written at t
// on a link with bandwidth B (SetBandwidth, SetLinkBandwidth) and latency
// L with jitter J (SetLatency, SetLinkLatency), delivery is at
//
//	start + k/B + L + rand[0, J)
//
// where start is t, or later if the link's direction is still busy
// sending earlier bytes of any of its conns. Bytes of one conn never
// overtake each other: a chunk is delivered no earlier than the one before
// it. A dial takes one round trip, 2L. Inside a synctest bubble all of
// this is exact in virtual time. Randomness (jitter) comes from a seeded
// source (WithSeed, SetSeed) so that failing runs can be replayed;
// WithTrace reports fault events as readable lines.
package memory
