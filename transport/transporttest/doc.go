// Package transporttest is the conformance suite for implementations of
// transport.Transport.
//
// A transport runs the whole suite with one call from an ordinary test:
//
//	func TestConformance(t *testing.T) {
//		transporttest.Run(t, func(t testing.TB) (transport.Transport, string) {
//			tr, err := tcp.New()
//			if err != nil {
//				t.Fatal(err)
//			}
//			return tr, "127.0.0.1:0"
//		})
//	}
//
// The Factory is called once per subtest (sometimes more), so every case
// starts from a fresh transport. A factory whose transport holds shared
// state (an io.Closer) registers its Close with t.Cleanup. The address it
// returns is passed to Listen; the suite then dials the listener's
// Addr().String(), so addresses need not be IP addresses (the memory
// transport uses names such as "node:0").
//
// The subtests, each named so that it can be selected with -run:
//
//   - Conn: golang.org/x/net/nettest.TestConn over a dialled conn and its
//     accepted peer (basic I/O, ping-pong, racy reads and writes, deadlines,
//     Close unblocking I/O, concurrent methods).
//   - DialRefused: a Dial to the address of a closed listener fails, within
//     Options.RefusedWithin, with an error that matches transport.ErrRefused.
//   - CloseUnblocksAccept: closing a listener unblocks a pending Accept
//     with an error matching net.ErrClosed, and later Accepts fail the same
//     way.
//   - ConcurrentDials: 100 concurrent Dials to one listener all succeed and
//     each stream carries only its own data.
//   - LargeWrite: 16 MiB written in one call arrive intact (SHA-256).
//   - Deadlines: read and write deadlines expire with a net.Error whose
//     Timeout() is true, and the conn works again once they are cleared.
//   - CloseOneKeepsOthers: closing one conn leaves other conns to the same
//     remote working in both directions (this matters for multiplexed
//     transports, whose streams share one session).
//   - DialContext: a Dial with an already-cancelled or already-expired
//     context fails with the context's error, both before and after a
//     session to the address exists.
//
// A transport with a documented limitation runs RunWith and declares it in
// Options: TCP with TLS sets FatalWriteTimeouts, because crypto/tls cannot
// write again after a Write timed out, which nettest.TestConn requires.
//
// Every subtest has a watchdog: if a case hangs for longer than Options.Watchdog,
// the suite reports it together with a dump of all goroutines and closes
// the listeners, conns and transport the case created, so that the hung
// calls return and the run ends instead of hanging until the go test
// timeout.
package transporttest
