package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/internal/wire"
	"github.com/peerkit/peerkit/transport/memory"
)

// Hostile input (issue 5). Every test checks that the healthy peers keep
// exchanging messages, that nothing panics (a panic in a node goroutine
// kills the test binary), and that memory stays bounded.

// allocated runs f and returns how many bytes were allocated meanwhile.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// heapAfterGC is the live heap.
func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func helloBytes(h wire.Hello) []byte {
	if h.Version == 0 {
		h.Version = wire.Version
	}
	if h.Codec == "" {
		h.Codec = "gob"
	}
	raw, err := h.Append(nil)
	if err != nil {
		panic(err)
	}
	return raw
}

func frameBytes(typ byte, body []byte) []byte {
	b := make([]byte, wire.FrameHeaderLen, wire.FrameHeaderLen+len(body))
	wire.PutFrameHeader(b, typ, len(body))
	return append(b, body...)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// gobFrames encodes cs as one link's writer would: one gob stream, one
// frame per value.
func gobFrames(t testing.TB, cs ...*wire.Control) [][]byte {
	var out [][]byte
	var buf bytes.Buffer
	enc := codec.Gob.NewEncoder(&buf)
	for _, c := range cs {
		buf.Reset()
		if err := enc.Encode(c); err != nil {
			t.Fatal(err)
		}
		out = append(out, frameBytes(wire.FrameControl, buf.Bytes()))
	}
	return out
}

func gobControls(t testing.TB, cs ...*wire.Control) []byte {
	return bytes.Join(gobFrames(t, cs...), nil)
}

// stranger dials a:1 from evil:1, runs its side of the handshake (an
// accepted one, unless the attack says otherwise) and returns the conn.
func strangerConn(t *testing.T, nw *memory.Network) net.Conn {
	conn, code := rawHandshake(t, nw, "evil:1", "a:1", "evil:1", 0xe1)
	if code != wire.VerdictAccept {
		t.Fatalf("stranger's handshake: verdict %s", wire.VerdictName(code))
	}
	return conn
}

func TestHostileInputKeepsHealthyPeers(t *testing.T) {
	type attack struct {
		opts   []Option
		log    string // expected in a's log
		attack func(t *testing.T, nw *memory.Network, wg *sync.WaitGroup) net.Conn
	}
	dial := func(t *testing.T, nw *memory.Network, wg *sync.WaitGroup, first []byte) net.Conn {
		conn, err := nw.DialFrom(context.Background(), "evil:1", "a:1")
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { conn.Write(first) }) // may block until the node reads, or fail once it closed
		return conn
	}
	after := func(body []byte) func(t *testing.T, nw *memory.Network, wg *sync.WaitGroup) net.Conn {
		return func(t *testing.T, nw *memory.Network, wg *sync.WaitGroup) net.Conn {
			conn := strangerConn(t, nw)
			wg.Go(func() { conn.Write(body) })
			return conn
		}
	}
	badMagic := helloBytes(wire.Hello{Addr: "evil:1", Instance: 1})
	copy(badMagic, "PKIX")
	attacks := map[string]attack{
		"random garbage": {log: "handshake refused", attack: func(t *testing.T, nw *memory.Network, wg *sync.WaitGroup) net.Conn {
			return dial(t, nw, wg, randomBytes(64<<10))
		}},
		"wrong magic": {log: "bad magic", attack: func(t *testing.T, nw *memory.Network, wg *sync.WaitGroup) net.Conn {
			return dial(t, nw, wg, badMagic)
		}},
		"wrong version": {log: "unsupported protocol version", attack: func(t *testing.T, nw *memory.Network, wg *sync.WaitGroup) net.Conn {
			return dial(t, nw, wg, helloBytes(wire.Hello{Version: 2, Addr: "evil:1", Instance: 1}))
		}},
		"wrong codec": {log: "codec", attack: func(t *testing.T, nw *memory.Network, wg *sync.WaitGroup) net.Conn {
			return dial(t, nw, wg, helloBytes(wire.Hello{Codec: "json", Addr: "evil:1", Instance: 1}))
		}},
		"wrong secret": {opts: []Option{WithSecret(secretA)}, log: "authentication failed", attack: func(t *testing.T, nw *memory.Network, wg *sync.WaitGroup) net.Conn {
			return dial(t, nw, wg, append(helloBytes(wire.Hello{Flags: wire.FlagAuth, Addr: "evil:1", Instance: 1}), randomBytes(wire.ProofLen)...))
		}},
		"frame header claiming 4 GiB":  {log: "frame exceeds size limit", attack: after([]byte{0xff, 0xff, 0xff, 0xff, wire.FrameData, 1, 2, 3})},
		"control frame claiming 4 GiB": {log: "frame exceeds size limit", attack: after([]byte{0xff, 0xff, 0xff, 0xff, wire.FrameControl, 1, 2, 3})},
		"valid handshake then garbage": {log: "protocol violation", attack: after(randomBytes(64 << 10))},
		"control frame of garbage":     {log: "decoding control message", attack: after(frameBytes(wire.FrameControl, randomBytes(1000)))},
		"handshake one byte a second": {log: "handshake refused", attack: func(t *testing.T, nw *memory.Network, wg *sync.WaitGroup) net.Conn {
			conn, err := nw.DialFrom(context.Background(), "evil:1", "a:1")
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				for _, c := range helloBytes(wire.Hello{Addr: "evil:1", Instance: 1}) {
					if _, err := conn.Write([]byte{c}); err != nil {
						return
					}
					time.Sleep(time.Second)
				}
			})
			return conn
		}},
	}
	for name, at := range attacks {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := memory.NewNetwork()
				defer nw.Close()
				var logs logBuffer
				a, b := pair(t, nw, append(at.opts, WithLogger(logs.logger()))...)
				heap := heapAfterGC()
				start := time.Now()
				var wg sync.WaitGroup
				defer wg.Wait()
				grew := allocated(func() {
					conn := at.attack(t, nw, &wg)
					defer conn.Close()
					// The node closes the conn, within the handshake
					// timeout for handshakes that never end.
					conn.SetReadDeadline(time.Now().Add(4 * testTimeout))
					if _, err := io.Copy(io.Discard, conn); err != nil {
						t.Fatalf("conn not closed by the node: %v", err)
					}
					if d := time.Since(start); d > testTimeout+testHealthy {
						t.Fatalf("the node kept the hostile conn %v", d)
					}
					synctest.Wait()
				})
				if grew > 32<<20 {
					t.Fatalf("%d bytes allocated while under attack", grew)
				}
				if !strings.Contains(logs.String(), at.log) {
					t.Fatalf("no log line with %q; log:\n%s", at.log, logs.String())
				}
				traffic(t, a, b)
				if rs := addrs(a.Remotes()); len(rs) != 1 || rs[0] != "b:1" {
					t.Fatalf("a knows %v", rs)
				}
				if h := heapAfterGC(); h > heap+16<<20 {
					t.Fatalf("live heap grew from %d to %d bytes", heap, h)
				}
			})
		})
	}
}

// A peer list of a million entries is refused by the control frame limit
// (realistic addresses) or, if its entries are tiny enough to fit, decoded
// in bounded memory and truncated to WithMaxPeerList.
func TestMillionEntryPeerList(t *testing.T) {
	huge := &wire.Control{Peers: make([]wire.Peer, 1_000_000)}
	for i := range huge.Peers {
		huge.Peers[i] = wire.Peer{Addr: fmt.Sprintf("10.%d.%d.%d:7946", i>>16, (i>>8)&0xff, i&0xff), Instance: uint64(i) + 1}
	}
	tiny := &wire.Control{Peers: make([]wire.Peer, 1_000_000)} // empty entries
	for name, c := range map[string]*wire.Control{"refused by the frame limit": huge, "truncated": tiny} {
		t.Run(name, func(t *testing.T) {
			stream := gobControls(t, c)
			t.Logf("%d-byte control frame", len(stream))
			synctest.Test(t, func(t *testing.T) {
				nw := memory.NewNetwork()
				defer nw.Close()
				var logs logBuffer
				a, b := pair(t, nw, WithLogger(logs.logger()))
				heap := heapAfterGC()
				var conn net.Conn
				grew := allocated(func() {
					conn = strangerConn(t, nw)
					go conn.Write(stream)
					time.Sleep(testHealthy)
					synctest.Wait()
				})
				defer conn.Close()
				if grew > 256<<20 {
					t.Fatalf("%d bytes allocated for a %d-byte peer list", grew, len(stream))
				}
				t.Logf("%d bytes allocated while a handled it", grew)
				if len(stream) > maxControlSize && !strings.Contains(logs.String(), "frame exceeds size limit") {
					t.Fatalf("oversized peer list not refused from its header; log:\n%s", logs.String())
				}
				a.mu.Lock()
				entries := len(a.table.remotes)
				a.mu.Unlock()
				if entries > 2 {
					t.Fatalf("a has %d entries after a list of empty peers", entries)
				}
				traffic(t, a, b)
				if h := heapAfterGC(); h > heap+16<<20 {
					t.Fatalf("live heap grew from %d to %d bytes", heap, h)
				}
			})
		})
	}
}

// countingNet counts dials and the most in progress at once.
type countingNet struct {
	*memory.Network
	dials, inFlight, maxInFlight atomic.Int64
}

func (c *countingNet) DialFrom(ctx context.Context, from, addr string) (net.Conn, error) {
	c.dials.Add(1)
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for {
		m := c.maxInFlight.Load()
		if n <= m || c.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	return c.Network.DialFrom(ctx, from, addr)
}

// A stranger gossips thousands of addresses where nothing answers (some
// refuse at once, some accept and never speak): the dials are bounded, the
// healthy peers are unaffected, and the remote table stays bounded and
// empties again.
func TestFakePeerFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cn := &countingNet{Network: memory.NewNetwork()}
		defer cn.Close()
		// 300 tarpits: accept, never answer.
		var wg sync.WaitGroup
		var lns []net.Listener
		for i := range 300 {
			ln, err := cn.Listen(fmt.Sprintf("tarpit-%d:1", i))
			if err != nil {
				t.Fatal(err)
			}
			lns = append(lns, ln)
			wg.Go(func() {
				var held []net.Conn
				defer func() {
					for _, c := range held {
						c.Close()
					}
				}()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					held = append(held, c)
				}
			})
		}
		defer func() {
			for _, ln := range lns {
				ln.Close()
			}
			wg.Wait()
		}()
		a := newMemNode(t, cn.Network, "a:1", WithTransport(cn))
		b := newMemNode(t, cn.Network, "b:1", WithTransport(cn))
		if err := a.Add("b:1"); err != nil {
			t.Fatal(err)
		}
		conn := strangerConn(t, cn.Network)
		defer conn.Close()
		go io.Copy(io.Discard, conn)
		dialsBefore := cn.dials.Load()
		var lists []*wire.Control
		distinct := 0
		for round := range 5 {
			c := &wire.Control{}
			for i := range DefaultMaxPeerList {
				addr := fmt.Sprintf("ghost-%d-%d:1", round, i)
				if i%16 == 0 {
					addr = fmt.Sprintf("tarpit-%d:1", (round*DefaultMaxPeerList+i)/16%300)
				}
				c.Peers = append(c.Peers, wire.Peer{Addr: addr, Instance: uint64(i + 1)})
			}
			distinct += len(c.Peers)
			lists = append(lists, c)
		}
		var maxEntries int
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				a.mu.Lock()
				maxEntries = max(maxEntries, len(a.table.remotes))
				a.mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
		}()
		grew := allocated(func() {
			for _, f := range gobFrames(t, lists...) {
				conn.Write(f)
				// Keep the stranger's link alive.
				conn.Write(frameBytes(wire.FrameHeartbeat, nil))
				time.Sleep(testHealthy)
				traffic(t, a, b)
			}
			time.Sleep(2 * testTimeout) // every tarpit dial times out
			synctest.Wait()
		})
		close(stop)
		<-sampled
		dials := cn.dials.Load() - dialsBefore
		t.Logf("gossiped %d addresses; %d dials, at most %d at once; at most %d entries; %d bytes allocated",
			distinct, dials, cn.maxInFlight.Load(), maxEntries, grew)
		if dials > int64(distinct) {
			t.Fatalf("%d dials for %d gossiped addresses: gossip dials were retried", dials, distinct)
		}
		if maxEntries > maxGossipDials+3 {
			t.Fatalf("the remote table reached %d entries", maxEntries)
		}
		if grew > 128<<20 {
			t.Fatalf("%d bytes allocated", grew)
		}
		a.mu.Lock()
		entries := len(a.table.remotes)
		a.mu.Unlock()
		if entries != 2 { // b, and the stranger, which kept its link
			t.Fatalf("a has %d entries, want b and the stranger", entries)
		}
		traffic(t, a, b)
	})
}

// Limits, one by one: each option is enforced where it should be.
func TestLimitOptionsEnforced(t *testing.T) {
	t.Run("WithMaxMessageSize", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			nw := memory.NewNetwork()
			defer nw.Close()
			var logs logBuffer
			a, b := pair(t, nw, WithMaxMessageSize(1024), WithLogger(logs.logger()))
			conn := strangerConn(t, nw)
			defer conn.Close()
			go io.Copy(io.Discard, conn)
			conn.Write(frameBytes(wire.FrameData, make([]byte, 1024)))
			if m := <-a.Inbox; len(m.Payload) != 1024 || m.From.Addr() != "evil:1" {
				t.Fatalf("got %d bytes from %s", len(m.Payload), m.From)
			}
			go conn.Write(frameBytes(wire.FrameData, make([]byte, 1025)))
			time.Sleep(testHealthy)
			synctest.Wait()
			if !strings.Contains(logs.String(), "frame exceeds size limit") {
				t.Fatalf("a 1025-byte frame was not refused; log:\n%s", logs.String())
			}
			traffic(t, a, b)
		})
	})
	t.Run("WithHandshakeTimeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			nw := memory.NewNetwork()
			defer nw.Close()
			newMemNode(t, nw, "a:1", WithHandshakeTimeout(200*time.Millisecond))
			conn, err := nw.DialFrom(context.Background(), "idle:1", "a:1")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			io.Copy(io.Discard, conn)
			if d := time.Since(start); d != 200*time.Millisecond {
				t.Fatalf("idle handshake closed after %v, want the 200ms handshake timeout", d)
			}
		})
	})
	t.Run("WithMaxHandshakes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			nw := memory.NewNetwork()
			defer nw.Close()
			a := newMemNode(t, nw, "a:1", WithMaxHandshakes(2))
			var conns []net.Conn
			for i := range 4 {
				c, err := nw.DialFrom(context.Background(), fmt.Sprintf("idle-%d:1", i), "a:1")
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				conns = append(conns, c)
				synctest.Wait() // accepted in order
			}
			for i, c := range conns {
				c.SetReadDeadline(time.Now().Add(testHealthy))
				got, _ := io.ReadAll(c)
				if i < 2 && len(got) == 0 {
					t.Fatalf("handshake %d within the limit got no hello", i)
				}
				if i >= 2 && len(got) != 0 {
					t.Fatalf("handshake %d beyond the limit got %d bytes; want it closed at accept", i, len(got))
				}
			}
			if shed := a.stats.handshakesShed.Load(); shed != 2 {
				t.Fatalf("handshakes shed = %d, want 2", shed)
			}
			time.Sleep(testTimeout) // the two slots time out
			newMemNode(t, nw, "b:1")
			if err := a.Add("b:1"); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("WithMaxRemotes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			nw := memory.NewNetwork()
			defer nw.Close()
			a := newMemNode(t, nw, "a:1", WithMaxRemotes(1))
			b := newMemNode(t, nw, "b:1")
			c := newMemNode(t, nw, "c:1")
			if err := b.Add("a:1"); err != nil {
				t.Fatal(err)
			}
			err := c.Add("a:1")
			if !errors.Is(err, ErrDeclined) || !strings.Contains(err.Error(), "busy") {
				t.Fatalf("Add beyond the remote limit = %v, want ErrDeclined (busy)", err)
			}
			synctest.Wait()
			// b gossips c to a: a does not dial beyond its limit either.
			time.Sleep(3 * testHealthy)
			if rs := addrs(a.Remotes()); len(rs) != 1 || rs[0] != "b:1" {
				t.Fatalf("a knows %v", rs)
			}
			traffic(t, a, b)
		})
	})
	t.Run("WithMaxPeerList", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cn := &countingNet{Network: memory.NewNetwork()}
			defer cn.Close()
			newMemNode(t, cn.Network, "a:1", WithTransport(cn), WithMaxPeerList(3))
			conn := strangerConn(t, cn.Network)
			defer conn.Close()
			go io.Copy(io.Discard, conn)
			c := &wire.Control{}
			for i := range 10 {
				c.Peers = append(c.Peers, wire.Peer{Addr: fmt.Sprintf("ghost-%d:1", i), Instance: 1})
			}
			before := cn.dials.Load()
			conn.Write(gobControls(t, c))
			time.Sleep(testHealthy)
			synctest.Wait()
			if d := cn.dials.Load() - before; d != 3 {
				t.Fatalf("%d dials from a 10-entry list with WithMaxPeerList(3)", d)
			}
		})
	})
}

// 4,000 connections opened over real TCP on loopback and left idle: the
// node sheds what exceeds its handshake limit, closes the rest at the
// handshake timeout, and its healthy peers notice nothing.
func TestIdleConnectionFloodTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 4,000 sockets")
	}
	const flood = 4000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot read RLIMIT_NOFILE: %v", err)
	}
	need := uint64(2*flood + 1000) // both ends, in the worst case, and slack
	if lim.Cur < need {
		raised := lim
		raised.Cur = min(need, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil || raised.Cur < need {
			t.Skipf("RLIMIT_NOFILE is %d (max %d), need %d for %d conns: %v", lim.Cur, lim.Max, need, flood, err)
		}
		defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	a := newTCPNode(t, WithHandshakeTimeout(time.Second))
	b := newTCPNode(t)
	if err := b.Add(a.AdvertiseAddr()); err != nil {
		t.Fatal(err)
	}
	goroutines := runtime.NumGoroutine()
	heap := heapAfterGC()
	conns := make([]net.Conn, 0, flood)
	var mu sync.Mutex
	var failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan struct{}, flood)
	for range flood {
		next <- struct{}{}
	}
	close(next)
	for range 32 {
		wg.Go(func() {
			d := net.Dialer{Timeout: 5 * time.Second}
			for range next {
				c, err := d.Dial("tcp", a.AdvertiseAddr())
				if err != nil {
					failed.Add(1)
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	t.Logf("%d conns open (%d dials failed) in %v", len(conns), failed.Load(), time.Since(start))
	if len(conns) < flood*9/10 {
		t.Fatalf("only %d of %d conns opened", len(conns), flood)
	}
	// Healthy peers keep talking meanwhile.
	traffic(t, a, b)
	if g := runtime.NumGoroutine(); g > goroutines+DefaultMaxHandshakes*3+50 {
		t.Fatalf("%d goroutines with %d idle conns (was %d)", g, len(conns), goroutines)
	}
	eventually(t, 10*time.Second, func() bool { return a.stats.handshakesShed.Load() > 0 }, func() string { return "nothing shed" })
	t.Logf("shed %d handshakes at accept", a.stats.handshakesShed.Load())
	if h := heapAfterGC(); h > heap+64<<20 {
		t.Fatalf("live heap grew from %d to %d bytes with %d idle conns", heap, h, len(conns))
	}
	// Once the handshake timeout has passed, new peers join again.
	c := newTCPNode(t)
	eventually(t, 10*time.Second, func() bool { return c.Add(a.AdvertiseAddr()) == nil }, func() string { return "c cannot join a" })
	traffic(t, a, b)
	traffic(t, a, c)
}
