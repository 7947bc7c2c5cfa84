package cluster

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/internal/wire"
	"github.com/peerkit/peerkit/transport/memory"
)

// countingNowWriter counts a link's direct writes by outcome.
type countingNowWriter struct {
	nowWriter
	whole, partial, none atomic.Int64
}

func (c *countingNowWriter) writeNow(hdr, payload []byte) (int, error) {
	n, err := c.nowWriter.writeNow(hdr, payload)
	switch {
	case n == len(hdr)+len(payload):
		c.whole.Add(1)
	case n > 0:
		c.partial.Add(1)
	default:
		c.none.Add(1)
	}
	return n, err
}

// inOrder checks that the handler saw want messages from from, whole and
// numbered in order, and none garbled.
func (h *handlerLog) inOrder(t *testing.T, from string, want int) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.bad) > 0 || len(h.seen[from]) != want {
		t.Fatalf("from %s: handled %d of %d messages, %d garbled", from, len(h.seen[from]), want, len(h.bad))
	}
	for i, k := range h.seen[from] {
		if k != uint32(i) {
			t.Fatalf("from %s: message %d arrived as number %d", from, i, k)
		}
	}
}

// heldReceiver starts a node "recv:1" on nw whose handler logs every
// message in h, except that the first message holds the link's reader
// until release is called: the conn fills behind it.
func heldReceiver(t *testing.T, nw *memory.Network, opts ...Option) (recv *Node, h *handlerLog, release func()) {
	t.Helper()
	h = &handlerLog{}
	held := make(chan struct{})
	var once sync.Once
	recv = newMemNode(t, nw, "recv:1", append(opts, WithHandler(func(m *Message) {
		once.Do(func() { <-held })
		h.handle(m)
	}))...)
	return recv, h, func() { close(held) }
}

// knows reports whether n has a remote at addr.
func knows(n *Node, addr string) bool {
	for _, r := range n.Remotes() {
		if r.Addr() == addr {
			return true
		}
	}
	return false
}

// countDirect wraps the direct writes of from's link to addr, before any
// Send uses them.
func countDirect(t *testing.T, from *Node, addr string) (*link, *countingNowWriter) {
	t.Helper()
	l := remoteAt(t, from, addr).p.link.Load()
	if l == nil || l.now == nil {
		t.Fatalf("the link to %s has no direct writes (conn %T)", addr, l.conn)
	}
	c := &countingNowWriter{nowWriter: l.now}
	l.now = c
	return l, c
}

// A large payload sent on an idle link is written by Send itself, whole:
// nothing is queued, so nothing was copied. While the writer is busy (it
// holds wmu), Send queues instead. (That it queues while frames wait is
// sendQueue.idle's, tested with the queue.)
func TestDirectSendOnIdleLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		var h handlerLog
		recv := newMemNode(t, nw, "recv:1", WithHandler(h.handle))
		send := newMemNode(t, nw, "send:1")
		if err := send.Add(recv.AdvertiseAddr()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		l, c := countDirect(t, send, "recv:1")

		p := numbered(0, 64<<10)
		if !l.sendDirect(p) {
			t.Fatal("a large payload on an idle link was not written directly")
		}
		if !l.queue.idle() || c.whole.Load() != 1 {
			t.Fatalf("direct send: queue idle %v, whole writes %d", l.queue.idle(), c.whole.Load())
		}
		clear(p) // written already: the receiver must still see it whole

		l.wmu.lock() // the writer is writing a burst
		busy := l.sendDirect(numbered(1, 64<<10))
		l.wmu.unlock()
		if busy {
			t.Fatal("a direct send wrote while the writer held the conn")
		}
		if err := send.Send(remoteAt(t, send, "recv:1"), numbered(1, 100)); err != nil {
			t.Fatal(err)
		}
		if err := send.Send(remoteAt(t, send, "recv:1"), numbered(2, 64<<10)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		h.inOrder(t, "send:1", 3)
	})
}

// A small payload is written by Send itself only as an answer: when the
// remote has sent a message since the last one written so. A stream one
// way goes through the queue, where the writer batches it; order holds
// across the two.
func TestSmallSendDirectOnlyWhenAnswering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		var ha, hb handlerLog
		a := newMemNode(t, nw, "a:1", WithHandler(ha.handle))
		b := newMemNode(t, nw, "b:1", WithHandler(hb.handle))
		if err := a.Add(b.AdvertiseAddr()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		la, ca := countDirect(t, a, "b:1")
		_, cb := countDirect(t, b, "a:1")
		toB, toA := remoteAt(t, a, "b:1"), remoteAt(t, b, "a:1")
		send := func(n *Node, to Remote, i uint32) {
			t.Helper()
			if err := n.Send(to, numbered(i, 100)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}

		send(a, toB, 0) // b has sent a nothing: queued
		if w := ca.whole.Load(); w != 0 {
			t.Fatalf("a's first message was written directly (%d), with nothing to answer", w)
		}
		send(b, toA, 0) // an answer: direct
		if w := cb.whole.Load(); w != 1 {
			t.Fatalf("b's answer: %d direct writes, want 1", w)
		}
		send(a, toB, 1) // an answer to the answer: direct
		if w := ca.whole.Load(); w != 1 {
			t.Fatalf("a's answer: %d direct writes, want 1", w)
		}
		for i := uint32(2); i < 6; i++ { // a stream that hears nothing back
			send(a, toB, i)
		}
		if w := ca.whole.Load(); w != 1 {
			t.Fatalf("a's one-way stream: %d direct writes, want still 1", w)
		}
		if !la.queue.idle() {
			t.Fatal("the queue was not drained")
		}
		hb.inOrder(t, "a:1", 6)
		ha.inOrder(t, "b:1", 1)
	})
}

// When the conn takes only part of a frame, Send queues the rest ahead of
// everything, and the frames arrive whole and in order.
func TestDirectSendPartialWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, err := memory.New(memory.WithBufferSize(100 << 10))
		if err != nil {
			t.Fatal(err)
		}
		defer nw.Close()
		recv, h, release := heldReceiver(t, nw, WithNetworkTimeout(time.Hour))
		send := newMemNode(t, nw, "send:1", WithNetworkTimeout(time.Hour))
		if err := send.Add(recv.AdvertiseAddr()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		l, c := countDirect(t, send, "recv:1")
		to := remoteAt(t, send, "recv:1")

		if err := send.Send(to, numbered(0, 100)); err != nil { // held by the handler
			t.Fatal(err)
		}
		synctest.Wait()
		// The pipe holds 100 KiB: the first frame fits, the second only in part.
		if !l.sendDirect(numbered(1, 64<<10)) || !l.sendDirect(numbered(2, 64<<10)) {
			t.Fatal("direct sends into a pipe with room wrote nothing")
		}
		if c.whole.Load() != 1 || c.partial.Load() != 1 {
			t.Fatalf("direct writes: %d whole, %d partial; want 1 and 1", c.whole.Load(), c.partial.Load())
		}
		if err := send.Send(to, numbered(3, 100)); err != nil {
			t.Fatal(err)
		}
		if err := send.Send(to, numbered(4, 64<<10)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if l.queue.depth() == 0 {
			t.Fatal("the rest of the partial frame was not queued")
		}
		release()
		synctest.Wait()
		h.inOrder(t, "send:1", 5)
		if st := send.Stats(); st.MessagesSent != 5 || st.Dropped != 0 {
			t.Fatalf("stats: %d sent, %d dropped; want 5 and 0", st.MessagesSent, st.Dropped)
		}
	})
}

// Over TCP, with a receiver slow enough to fill the socket's buffers, the
// direct writes meet full and partly full sockets; every message from
// every sender still arrives whole and in order.
func TestDirectSendOverTCP(t *testing.T) {
	var h handlerLog
	var handled atomic.Int64
	recv := newTCPNode(t, WithHandler(func(m *Message) {
		if handled.Add(1)%50 == 0 {
			time.Sleep(2 * time.Millisecond) // let the sockets fill
		}
		h.handle(m)
	}))
	senders := []*Node{newTCPNode(t), newTCPNode(t)}
	var counters []*countingNowWriter
	for _, s := range senders {
		if err := s.Add(recv.AdvertiseAddr()); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, func() bool { return knows(s, recv.AdvertiseAddr()) }, func() string { return meshReport(senders) })
		l, c := countDirect(t, s, recv.AdvertiseAddr())
		counters = append(counters, c)
		// The first send, a large one, then finds the link idle and the
		// socket empty. (Starting with a small one, the writer could stay
		// busy for all 400 sends, and none was written directly.)
		eventually(t, 5*time.Second, func() bool { return l.direct.Load() && l.queue.idle() }, func() string { return "the link never went idle" })
	}
	sizes := []int{64 << 10, 100, directMin, 300 << 10, 5000}
	const n = 400
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Go(func() {
			to := remoteAt(t, s, recv.AdvertiseAddr())
			for i := range uint32(n) {
				if err := s.Send(to, numbered(i, sizes[int(i)%len(sizes)])); err != nil {
					t.Errorf("Send %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	eventually(t, 20*time.Second, func() bool {
		return h.count(senders[0].AdvertiseAddr()) == n && h.count(senders[1].AdvertiseAddr()) == n
	}, func() string {
		return fmt.Sprintf("handled %d and %d of %d", h.count(senders[0].AdvertiseAddr()), h.count(senders[1].AdvertiseAddr()), n)
	})
	for _, s := range senders {
		h.inOrder(t, s.AdvertiseAddr(), n)
	}
	var whole, partial, none int64
	for _, c := range counters {
		whole, partial, none = whole+c.whole.Load(), partial+c.partial.Load(), none+c.none.Load()
	}
	t.Logf("direct writes: %d whole, %d partial, %d refused (socket full)", whole, partial, none)
	if whole == 0 {
		t.Fatal("no large payload was written directly")
	}
}

// Over TCP, with a receiver that stops reading, direct writes fill the
// socket until one goes out in part (or not at all); the rest follows
// once the receiver reads again, and every message arrives whole and in
// order.
func TestDirectSendFillsTCPSocket(t *testing.T) {
	var h handlerLog
	release := make(chan struct{})
	var once sync.Once
	recv := newTCPNode(t, WithNetworkTimeout(time.Minute), WithHandler(func(m *Message) {
		once.Do(func() { <-release })
		h.handle(m)
	}))
	send := newTCPNode(t, WithNetworkTimeout(time.Minute))
	if err := send.Add(recv.AdvertiseAddr()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return knows(send, recv.AdvertiseAddr()) }, func() string { return meshReport([]*Node{send}) })
	l, c := countDirect(t, send, recv.AdvertiseAddr())
	to := remoteAt(t, send, recv.AdvertiseAddr())
	if err := send.Send(to, numbered(0, 100)); err != nil {
		t.Fatal(err)
	}
	sent := uint32(1)
	for ; c.partial.Load()+c.none.Load() == 0 && sent < 400; sent++ {
		eventually(t, 5*time.Second, l.queue.idle, func() string { return "the writer never went idle" })
		if err := send.Send(to, numbered(sent, 300<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if c.partial.Load()+c.none.Load() == 0 {
		t.Fatalf("%d direct writes of 300 KiB into a socket nobody reads all went whole", c.whole.Load())
	}
	t.Logf("after %d whole direct writes: %d partial, %d refused", c.whole.Load(), c.partial.Load(), c.none.Load())
	close(release)
	eventually(t, 20*time.Second, func() bool { return h.count(send.AdvertiseAddr()) == int(sent) }, func() string {
		return fmt.Sprintf("handled %d of %d", h.count(send.AdvertiseAddr()), sent)
	})
	h.inOrder(t, send.AdvertiseAddr(), int(sent))
}

// The writer's idle tick never puts a heartbeat between a partial direct
// write and the rest of its frame: with frames waiting, it writes them
// instead. (It wrote a heartbeat there, inside the frame: a direct write
// that filled the socket while the idle writer's tick came, and the
// receiver read garbage.)
func TestBeatWritesTheRestOfAFrameFirst(t *testing.T) {
	for _, waiting := range []bool{false, true} {
		a, b := net.Pipe()
		l := &link{conn: a, queue: newSendQueue(8), wmu: make(writeLock, 1)}
		if waiting {
			rest := newPayloadSize(4)
			copy(rest.b, "rest")
			l.queue.pushFront(outFrame{data: rest, cont: true})
		}
		done := make(chan error, 1)
		go func() { done <- l.beat(newFrameWriter(a)) }()
		want := wire.AppendFrameHeader(nil, wire.FrameHeartbeat, 0)
		if waiting {
			want = []byte("rest")
		}
		got := make([]byte, len(want))
		_, err := io.ReadFull(b, got)
		b.Close() // unblocks a writer with more to write
		werr := <-done
		a.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frames waiting %v: the tick wrote % x, want % x", waiting, got, want)
		}
		if werr != nil {
			t.Fatal(werr)
		}
	}
}

// hookNowWriter runs after each direct write, with the link's wmu held.
type hookNowWriter struct {
	nowWriter
	after func(n, total int)
}

func (h *hookNowWriter) writeNow(hdr, payload []byte) (int, error) {
	n, err := h.nowWriter.writeNow(hdr, payload)
	h.after(n, len(hdr)+len(payload))
	return n, err
}

// directLink is a sender's idle link to a receiver on nw, ready for a
// direct send. No heartbeat or view falls due for a minute, so little
// wakes its writer while a test runs (the tests' healthy interval made a
// Send under -race and load find the writer busy more often).
func directLink(t *testing.T, nw *memory.Network) (*Node, Remote, *link) {
	t.Helper()
	quiet := []Option{WithHealthyInterval(time.Minute), WithNetworkTimeout(time.Hour)}
	recv := newMemNode(t, nw, "recv:1", quiet...)
	send := newMemNode(t, nw, "send:1", quiet...)
	if err := send.Add(recv.AdvertiseAddr()); err != nil {
		t.Fatal(err)
	}
	to := remoteAt(t, send, "recv:1")
	l := to.p.link.Load()
	eventually(t, 5*time.Second, func() bool { return l.direct.Load() && l.queue.idle() }, func() string { return "the link never went idle" })
	return send, to, l
}

// A message whose frame went out in part, on a link that then goes down
// before the writer sends the rest, is counted once: dropped, not also
// sent. (It was counted as both.)
func TestDirectSendPartialThenDownCountsOnce(t *testing.T) {
	nw, err := memory.New(memory.WithBufferSize(20 << 10))
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	send, _, l := directLink(t, nw)
	partial := false
	l.now = &hookNowWriter{nowWriter: l.now, after: func(n, total int) {
		if n > 0 && n < total {
			partial = true
			l.shutdown(errAborted)
			time.Sleep(10 * time.Millisecond) // the writer sees the link down
		}
	}}
	// What Send does, but retried while the link is not idle for it (the
	// writer briefly holding the conn, under -race and load): a refused
	// direct send writes and counts nothing.
	p := numbered(1, 64<<10)
	for i := 0; !l.sendDirect(p); i++ {
		if i == 1000 {
			t.Fatal("no direct send was taken in 1000 tries")
		}
		time.Sleep(time.Millisecond)
	}
	send.Close()
	if !partial {
		t.Fatal("the direct write into a 20 KiB pipe was not partial")
	}
	if st := send.Stats(); st.MessagesSent != 0 || st.Dropped != 1 || l.stats.msgsOut.Load() != 0 {
		t.Fatalf("1 Send accepted, counted %d sent (the link: %d) and %d dropped; want 0 and 1",
			st.MessagesSent, l.stats.msgsOut.Load(), st.Dropped)
	}
}

// A direct send that finishes as its link goes down and retires is in the
// node's totals: the writer waits for it before the link's counters are
// folded in. (They were folded in first, and the message was lost from
// Stats.)
func TestDirectSendCountedWhenLinkRetires(t *testing.T) {
	nw := memory.NewNetwork()
	defer nw.Close()
	send, to, l := directLink(t, nw)
	l.now = &hookNowWriter{nowWriter: l.now, after: func(int, int) {
		l.shutdown(errAborted)
		for i := 0; l.running.Load() != 0 && i < 50; i++ { // the link's goroutines stop
			time.Sleep(time.Millisecond)
		}
	}}
	if err := send.Send(to, numbered(1, 64<<10)); err != nil {
		t.Fatal(err)
	}
	send.Close()
	if st := send.Stats(); st.MessagesSent != 1 || st.BytesSent != 64<<10 {
		t.Fatalf("node totals: %d sent (%d bytes), want 1 (%d)", st.MessagesSent, st.BytesSent, 64<<10)
	}
}

// A node that leaves right after a direct send went out in part, into a
// receiver that does not read yet, sends the rest of that frame, then its
// goodbye: the receiver gets every message whole and in order, and sees
// the sender leave, not get lost. (End to end: the writer has taken the
// rest by the time Close asks it to leave, so this does not tell whether
// sayGoodbye would write queued frames first; it does, before anything.)
func TestDirectSendPartialThenGoodbye(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, err := memory.New(memory.WithBufferSize(100 << 10))
		if err != nil {
			t.Fatal(err)
		}
		defer nw.Close()
		recv, h, release := heldReceiver(t, nw)
		var reasons []Reason
		var mu sync.Mutex
		recv.OnEvent(func(e Event) {
			if e.Kind == EventRemoved {
				mu.Lock()
				reasons = append(reasons, e.Reason)
				mu.Unlock()
			}
		})
		send := newMemNode(t, nw, "send:1")
		if err := send.Add(recv.AdvertiseAddr()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		_, c := countDirect(t, send, "recv:1")
		to := remoteAt(t, send, "recv:1")
		for i := range uint32(3) { // a small one held by the handler, then one whole and one in part
			size := 64 << 10
			if i == 0 {
				size = 100
			}
			if err := send.Send(to, numbered(i, size)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		if c.partial.Load() != 1 {
			t.Fatalf("direct writes: %d whole, %d partial; want one partial", c.whole.Load(), c.partial.Load())
		}
		closed := make(chan struct{})
		go func() {
			send.Close() // the goodbye waits behind the rest of the frame
			close(closed)
		}()
		release()
		<-closed
		synctest.Wait()
		h.inOrder(t, "send:1", 3)
		mu.Lock()
		defer mu.Unlock()
		if len(reasons) != 1 || reasons[0] != ReasonLeft {
			t.Fatalf("the receiver removed the sender for %v, want once, for leaving", reasons)
		}
	})
}
