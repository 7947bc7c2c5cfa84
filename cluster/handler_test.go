package cluster

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

// handlerLog records, per sender, the sequence numbers a WithHandler
// handler saw, checking each payload's checksum as it goes.
type handlerLog struct {
	mu   sync.Mutex
	seen map[string][]uint32
	bad  []string
}

// numbered returns payload i of n bytes (n >= 8): its number, a checksum
// of the rest, and bytes that depend on i.
func numbered(i uint32, n int) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint32(b, i)
	for k := 8; k < n; k++ {
		b[k] = byte(int(i) + k)
	}
	binary.BigEndian.PutUint32(b[4:], crc32.ChecksumIEEE(b[8:]))
	return b
}

func (h *handlerLog) handle(m *Message) {
	p := m.Payload
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen == nil {
		h.seen = map[string][]uint32{}
	}
	if len(p) < 8 || binary.BigEndian.Uint32(p[4:]) != crc32.ChecksumIEEE(p[8:]) {
		h.bad = append(h.bad, m.From.Addr())
		return
	}
	h.seen[m.From.Addr()] = append(h.seen[m.From.Addr()], binary.BigEndian.Uint32(p))
}

func (h *handlerLog) count(from string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen[from])
}

// With WithHandler, every message reaches the handler, whole and in order
// per sender, whatever its size (in the read buffer, larger than it, or
// larger than a pooled buffer); the Inbox carries none.
func TestHandlerGetsEveryMessageInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		var h handlerLog
		recv := newMemNode(t, nw, "recv:1", WithHandler(h.handle), WithMaxMessageSize(2<<20))
		sizes := []int{8, 100, smallReadBuffer, smallReadBuffer + 1, maxSmallPayload + 1, linkBufferSize, linkBufferSize + 1, 64 << 10, 1<<20 + 1}
		senders := []*Node{newMemNode(t, nw, "a:1", WithMaxMessageSize(2<<20)), newMemNode(t, nw, "b:1", WithMaxMessageSize(2<<20))}
		for _, s := range senders {
			if err := s.Add(recv.AdvertiseAddr()); err != nil {
				t.Fatal(err)
			}
		}
		const rounds = 40
		var wg sync.WaitGroup
		for _, s := range senders {
			wg.Go(func() {
				to := remoteAt(t, s, recv.AdvertiseAddr())
				for i := range uint32(rounds * len(sizes)) {
					if err := s.Send(to, numbered(i, sizes[int(i)%len(sizes)])); err != nil {
						t.Errorf("%s: Send %d: %v", s.AdvertiseAddr(), i, err)
						return
					}
				}
			})
		}
		wg.Wait()
		eventually(t, 10*time.Second, func() bool {
			return h.count("a:1") == rounds*len(sizes) && h.count("b:1") == rounds*len(sizes)
		}, func() string {
			h.mu.Lock()
			defer h.mu.Unlock()
			return fmt.Sprintf("handled %d and %d of %d each; %d garbled; remotes %s", len(h.seen["a:1"]), len(h.seen["b:1"]), rounds*len(sizes), len(h.bad), meshReport([]*Node{recv}))
		})
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.bad) > 0 {
			t.Fatalf("%d payloads arrived garbled, from %v", len(h.bad), h.bad)
		}
		for from, seq := range h.seen {
			for i, n := range seq {
				if n != uint32(i) {
					t.Fatalf("from %s: message %d arrived as number %d: out of order", from, i, n)
				}
			}
		}
		select {
		case m := <-recv.Inbox:
			t.Fatalf("the Inbox got a message from %s with a handler set", m.From.Addr())
		default:
		}
	})
}

// A handler that blocks stops only its own remote's link: the other
// remote's messages still arrive, nobody is removed however long it
// blocks, and once it returns the held messages follow in order. Close
// waits for a running handler to return.
func TestSlowHandlerStopsOneLinkAndRemovesNobody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithBufferSize(4 << 10))
		defer nw.Close()
		release := make(chan struct{})
		var blocked atomic.Bool
		var h handlerLog
		recv := newMemNode(t, nw, "recv:1", WithHandler(func(m *Message) {
			if m.From.Addr() == "slow:1" && blocked.CompareAndSwap(false, true) {
				<-release
			}
			h.handle(m)
		}))
		slow := newMemNode(t, nw, "slow:1", WithSendQueueSize(4))
		fast := newMemNode(t, nw, "fast:1")
		for _, s := range []*Node{slow, fast} {
			if err := s.Add(recv.AdvertiseAddr()); err != nil {
				t.Fatal(err)
			}
		}
		// The slow remote sends until its queue and the conn are full.
		sent := uint32(0)
		for ; ; sent++ {
			if err := slow.Send(remoteAt(t, slow, recv.AdvertiseAddr()), numbered(sent, 1000)); err != nil {
				break // ErrSendTimeout: the handler holds everything back
			}
		}
		if sent < 4 {
			t.Fatalf("only %d sends before the slow link backed up", sent)
		}
		// Meanwhile, and for many network timeouts, the fast remote's
		// messages are handled.
		for i := range uint32(200) {
			if err := fast.Send(remoteAt(t, fast, recv.AdvertiseAddr()), numbered(i, 100)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(testTimeout / 20)
		}
		synctest.Wait()
		if n := h.count("fast:1"); n != 200 {
			t.Fatalf("the fast remote's messages handled: %d of 200 while the other's handler blocked", n)
		}
		for _, pair := range [][2]*Node{{recv, slow}, {slow, recv}, {recv, fast}} {
			if !slices.Contains(addrs(pair[0].Remotes()), pair[1].AdvertiseAddr()) {
				t.Fatalf("%s removed %s while a handler blocked", pair[0].AdvertiseAddr(), pair[1].AdvertiseAddr())
			}
		}

		// Close waits for the handler.
		closed := make(chan struct{})
		go func() { recv.Close(); close(closed) }()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a handler was running")
		default:
		}
		close(release)
		<-closed
		if n := h.count("slow:1"); n < 1 {
			t.Fatalf("the blocked message was not handled after the handler returned")
		}
		h.mu.Lock()
		for i, n := range h.seen["slow:1"] {
			if n != uint32(i) {
				t.Fatalf("slow remote's message %d handled as number %d", i, n)
			}
		}
		h.mu.Unlock()
	})
}

// remoteAt returns n's remote at addr.
func remoteAt(t testing.TB, n *Node, addr string) Remote {
	t.Helper()
	for _, r := range n.Remotes() {
		if r.Addr() == addr {
			return r
		}
	}
	t.Fatalf("%s has no remote %s: %s", n.AdvertiseAddr(), addr, meshReport([]*Node{n}))
	return Remote{}
}

// A handler may send, to the sender too: an echo.
func TestHandlerMaySend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		var echo *Node
		echo = newMemNode(t, nw, "echo:1", WithHandler(func(m *Message) {
			if err := echo.Send(m.From, m.Payload); err != nil {
				t.Errorf("Send from a handler: %v", err)
			}
		}))
		a := newMemNode(t, nw, "a:1")
		if err := a.Add(echo.AdvertiseAddr()); err != nil {
			t.Fatal(err)
		}
		for i := range uint32(3000) {
			if err := a.Send(a.Remotes()[0], numbered(i, 64)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range uint32(3000) {
			m := <-a.Inbox
			if !bytes.Equal(m.Payload, numbered(i, 64)) {
				t.Fatalf("echo %d came back as %x", i, m.Payload[:8])
			}
		}
	})
}

// Handled messages larger than the read buffer are read into pooled
// buffers and cost no allocation once the pools are warm (the reader
// once allocated a release function for each). Over TCP: a memory conn's
// reader allocates a channel each time it waits for bytes.
func TestHandlerLargeMessagesAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	var handled atomic.Int64
	recv := newTCPNode(t, WithHandler(func(*Message) { handled.Add(1) }))
	send := newTCPNode(t)
	if err := send.Add(recv.AdvertiseAddr()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return len(send.Remotes()) == 1 }, func() string { return meshReport([]*Node{send}) })
	to := send.Remotes()[0]
	p := make([]byte, 64<<10)
	burst := func(n int) { // one message at a time: the sender's side allocates nothing either
		for range n {
			want := handled.Load() + 1
			if err := send.Send(to, p); err != nil {
				t.Fatal(err)
			}
			for handled.Load() < want {
				runtime.Gosched()
			}
		}
	}
	burst(200) // warm the pools
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 500
	burst(n)
	runtime.ReadMemStats(&after)
	if per := float64(after.Mallocs-before.Mallocs) / n; per > 0.3 {
		t.Fatalf("%.2f allocations per handled 64 KiB message, want none", per)
	}
}
