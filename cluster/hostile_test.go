package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/internal/wire"
	"github.com/peerkit/peerkit/transport/memory"
)

// rawHandshake dials addr on nw as a hand-made client claiming claim and
// instance, completes the handshake, and returns the conn and the verdict.
func rawHandshake(t *testing.T, nw *memory.Network, from, addr, claim string, instance uint64) (net.Conn, byte) {
	t.Helper()
	return rawHandshakeCodec(t, nw, from, addr, claim, instance, "gob")
}

// rawHandshakeCodec is rawHandshake with the codec the hello names.
func rawHandshakeCodec(t *testing.T, nw *memory.Network, from, addr, claim string, instance uint64, codecName string) (net.Conn, byte) {
	t.Helper()
	conn, err := nw.DialFrom(context.Background(), from, addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &wire.Hello{Version: wire.Version, Instance: instance, Codec: codecName, Addr: claim}
	raw, _ := h.Append(nil)
	if _, err := conn.Write(raw); err != nil {
		t.Fatal(err)
	}
	if _, _, err := wire.ReadHello(conn); err != nil {
		t.Fatal(err)
	}
	code, _, err := wire.ReadVerdict(conn)
	if err != nil {
		t.Fatal(err)
	}
	return conn, code
}

// traffic checks that a and b still exchange messages both ways.
func traffic(t *testing.T, a, b *Node) {
	t.Helper()
	for _, p := range [][2]*Node{{a, b}, {b, a}} {
		var to Remote
		for _, r := range p[0].Remotes() {
			if r.Addr() == p[1].AdvertiseAddr() {
				to = r
			}
		}
		if err := p[0].Send(to, []byte("still fine")); err != nil {
			t.Fatalf("%s -> %s: %v", p[0].AdvertiseAddr(), p[1].AdvertiseAddr(), err)
		}
		select {
		case m := <-p[1].Inbox:
			if string(m.Payload) != "still fine" {
				t.Fatalf("got %q", m.Payload)
			}
		case <-time.After(testTimeout):
			t.Fatalf("%s -> %s: message lost", p[0].AdvertiseAddr(), p[1].AdvertiseAddr())
		}
	}
}

func TestGarbageIsDroppedWithALogLine(t *testing.T) {
	cases := map[string][]byte{
		"http":        []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"random":      nil, // filled below
		"bad version": append([]byte(wire.Magic), 99, 0),
		"bad lengths": append(append([]byte(wire.Magic), wire.Version), make([]byte, 60)...),
	}
	cases["random"] = make([]byte, 4096)
	rand.Read(cases["random"])
	for name, junk := range cases {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := memory.NewNetwork()
				defer nw.Close()
				var logs logBuffer
				a, b := pair(t, nw, WithLogger(logs.logger()))
				conn, err := nw.DialFrom(context.Background(), "evil:1", "a:1")
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conn.Write(junk)
				// The node closes the conn: reading ends (after its hello
				// and perhaps a verdict).
				conn.SetReadDeadline(time.Now().Add(2 * testTimeout))
				if _, err := io.Copy(io.Discard, conn); err != nil {
					t.Fatalf("conn not closed by the node: %v", err)
				}
				synctest.Wait()
				if !strings.Contains(logs.String(), "handshake refused") {
					t.Fatalf("no log line for garbage; log:\n%s", logs.String())
				}
				traffic(t, a, b)
			})
		})
	}
}

func TestOversizedFrameDroppedBeforeAllocation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		var logs logBuffer
		a, b := pair(t, nw, WithLogger(logs.logger()))
		conn, code := rawHandshake(t, nw, "evil:1", "a:1", "evil:1", 7)
		if code != wire.VerdictAccept {
			t.Fatalf("verdict %s", wire.VerdictName(code))
		}
		defer conn.Close()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		// A data frame that claims 4 GiB - 1, then a few bytes.
		conn.Write([]byte{0xff, 0xff, 0xff, 0xff, wire.FrameData, 1, 2, 3})
		conn.SetReadDeadline(time.Now().Add(2 * testTimeout))
		io.Copy(io.Discard, conn)
		synctest.Wait()
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
			t.Fatalf("allocated %d bytes after a 4 GiB length claim", grew)
		}
		if !strings.Contains(logs.String(), "frame exceeds size limit") {
			t.Fatalf("no log line for the oversized frame; log:\n%s", logs.String())
		}
		traffic(t, a, b)
	})
}

func TestAddToSilentListenerTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		ln, err := nw.Listen("tarpit:1") // accepts, never answers
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		a, b := pair(t, nw)
		c := newMemNode(t, nw, "c:1")
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- a.Add("tarpit:1") }()
		// Meanwhile the node serves its healthy peers and other Adds.
		traffic(t, a, b)
		if err := a.Add("c:1"); err != nil {
			t.Fatalf("Add while another Add hangs: %v", err)
		}
		err = <-done
		if err == nil {
			t.Fatal("Add to a silent listener succeeded")
		}
		if d := time.Since(start); d > testTimeout {
			t.Fatalf("Add to a silent listener returned after %v, beyond the network timeout", d)
		}
		_ = c
	})
}

func TestSlowHandshakeDoesNotBlockOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, b := pair(t, nw)
		// A peer that sends its hello one byte per 100 ms.
		conn, err := nw.DialFrom(context.Background(), "slow:1", "a:1")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		go func() {
			h := &wire.Hello{Version: wire.Version, Instance: 9, Codec: "gob", Addr: "slow:1"}
			raw, _ := h.Append(nil)
			for _, c := range raw {
				if _, err := conn.Write([]byte{c}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		c := newMemNode(t, nw, "c:1")
		if err := c.Add("a:1"); err != nil {
			t.Fatalf("Add during a slow handshake: %v", err)
		}
		traffic(t, a, b)
		time.Sleep(2 * testTimeout)
		for _, r := range a.Remotes() {
			if r.Addr() == "slow:1" {
				t.Fatal("a peer that never finished its hello within the handshake timeout was added")
			}
		}
	})
}

func TestCodecMismatchRefusedClearly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		var logs logBuffer
		newMemNode(t, nw, "gob:1", WithLogger(logs.logger()))
		j := newMemNode(t, nw, "json:1", WithCodec(codec.JSON))
		err := j.Add("gob:1")
		if !errors.Is(err, ErrIncompatible) || !errors.Is(err, ErrHandshake) {
			t.Fatalf("Add across codecs = %v, want ErrIncompatible and ErrHandshake", err)
		}
		if !strings.Contains(err.Error(), `"gob"`) || !strings.Contains(err.Error(), `"json"`) {
			t.Fatalf("error does not name both codecs: %v", err)
		}
		var he *HandshakeError
		if !errors.As(err, &he) || he.Addr != "gob:1" {
			t.Fatalf("error is not a *HandshakeError for gob:1: %#v", err)
		}
		synctest.Wait()
		if !strings.Contains(logs.String(), "codec") {
			t.Fatalf("listener logged nothing about the codec; log:\n%s", logs.String())
		}
	})
}

// The seed let any stranger evict a peer with one forged message.
func TestStrangerCannotEvictOrReplaceHealthyPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, b := pair(t, nw)
		ev := record(a)
		// Claim b's address with a new instance id.
		conn, code := rawHandshake(t, nw, "evil:1", "a:1", "b:1", 12345)
		if code == wire.VerdictAccept {
			t.Fatal("stranger claiming a live peer's address was accepted")
		}
		conn.Close()
		// Claim b's address with b's own instance id, then say goodbye.
		conn, code = rawHandshake(t, nw, "evil:1", "a:1", "b:1", b.Instance())
		if code == wire.VerdictAccept {
			t.Fatal("stranger claiming a live peer's identity was accepted")
		}
		conn.Write([]byte{0, 0, 0, 0, wire.FrameGoodbye})
		conn.Close()
		time.Sleep(3 * testTimeout)
		if got := ev.get(); len(got) != 0 {
			t.Fatalf("a's membership changed: %v", got)
		}
		if rs := a.Remotes(); len(rs) != 1 || rs[0].Instance() != b.Instance() {
			t.Fatalf("a knows %#v", rs)
		}
		traffic(t, a, b)
	})
}

// frames reads frames from conn until it fails, and returns them.
func collectFrames(conn net.Conn) <-chan [2][]byte {
	out := make(chan [2][]byte, 1024)
	go func() {
		defer close(out)
		br := bufio.NewReader(conn)
		for {
			typ, n, err := wire.ReadFrameHeader(br, 1<<20, 1<<22)
			if err != nil {
				return
			}
			body := make([]byte, n)
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			out <- [2][]byte{{typ}, body}
		}
	}()
	return out
}

// A stranger claiming a healthy peer's address, with a new instance id or
// with the peer's own, never receives the traffic meant for that peer:
// its conn carries nothing after the refusal, and the peer gets it all.
func TestStrangerCannotReceivePeerTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, b := pair(t, nw)
		for _, instance := range []uint64{12345, b.Instance()} {
			conn, code := rawHandshake(t, nw, "evil:1", "a:1", "b:1", instance)
			if code == wire.VerdictAccept {
				t.Fatalf("stranger claiming b:1 (instance %x) accepted", instance)
			}
			rb := a.Remotes()[0]
			for i := range 5 {
				if err := a.Send(rb, []byte("for b only")); err != nil {
					t.Fatal(err)
				}
				a.Broadcast([]byte("for b only"))
				select {
				case m := <-b.Inbox:
					<-b.Inbox
					if m.From.Addr() != "a:1" {
						t.Fatalf("b got a message from %s", m.From)
					}
				case <-time.After(testTimeout):
					t.Fatalf("message %d to b lost while a stranger claimed its address", i)
				}
			}
			conn.SetReadDeadline(time.Now().Add(testTimeout))
			if rest, _ := io.ReadAll(conn); len(rest) != 0 {
				t.Fatalf("stranger's conn received %d bytes after its verdict", len(rest))
			}
			conn.Close()
		}
	})
}

// Gossip cannot replace a live peer: a stranger that links as itself and
// gossips a fake instance for b's address changes nothing, and gets none
// of b's traffic.
func TestGossipOfFakeInstanceForLivePeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, b := pair(t, nw)
		ev := record(a)
		conn, code := rawHandshake(t, nw, "evil:1", "a:1", "evil:1", 0xe1)
		if code != wire.VerdictAccept {
			t.Fatalf("verdict %s", wire.VerdictName(code))
		}
		defer conn.Close()
		frames := collectFrames(conn)
		var buf bytes.Buffer
		enc := codec.Gob.NewEncoder(&buf)
		enc.Encode(&wire.Control{Peers: []wire.Peer{{Addr: "b:1", Instance: 0xbad}, {Addr: "a:1", Instance: 0xbad}}})
		hdr := make([]byte, wire.FrameHeaderLen)
		wire.PutFrameHeader(hdr, wire.FrameControl, buf.Len())
		conn.Write(append(hdr, buf.Bytes()...))
		time.Sleep(testHealthy)
		synctest.Wait()
		rb := a.Remotes()
		for _, r := range rb {
			if r.Addr() == "b:1" {
				if r.Instance() != b.Instance() {
					t.Fatalf("b:1 now has instance %x", r.Instance())
				}
				if err := a.Send(r, []byte("for b only")); err != nil {
					t.Fatal(err)
				}
			}
		}
		if m := <-b.Inbox; string(m.Payload) != "for b only" {
			t.Fatalf("b got %q", m.Payload)
		}
		conn.Write([]byte{0, 0, 0, 0, wire.FrameHeartbeat})
		time.Sleep(testHealthy)
		conn.Close()
		for f := range frames {
			if f[0][0] == wire.FrameData {
				t.Fatalf("stranger received a data frame: %q", f[1])
			}
		}
		for _, e := range ev.get() {
			if strings.Contains(e, "b:1") {
				t.Fatalf("a's membership of b changed: %v", ev.get())
			}
		}
		traffic(t, a, b)
	})
}

// A control frame with bytes after its message is a protocol error the
// moment it arrives (PROTOCOL.md, "Control messages"): the link drops at
// once and the message is not applied, with either codec. The JSON decoder
// used to keep the stray bytes in its own buffer, apply the message, and
// fail only when the next control frame came, or never.
func TestControlFrameWithTrailingBytesDropsLinkAtOnce(t *testing.T) {
	for _, c := range []codec.Codec{codec.Gob, codec.JSON} {
		t.Run(c.Name(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := memory.NewNetwork()
				defer nw.Close()
				a := newMemNode(t, nw, "a:1", WithCodec(c))
				removed := make(chan Remote, 1)
				a.RemoteRemoved(func(r Remote) { removed <- r })
				conn, code := rawHandshakeCodec(t, nw, "evil:1", "a:1", "evil:1", 0xe1, c.Name())
				if code != wire.VerdictAccept {
					t.Fatalf("verdict %s", wire.VerdictName(code))
				}
				defer conn.Close()
				var buf bytes.Buffer
				if err := c.NewEncoder(&buf).Encode(&wire.Control{MetaSet: true, Meta: []byte("applied")}); err != nil {
					t.Fatal(err)
				}
				body := append(buf.Bytes(), 'X')
				start := time.Now()
				if _, err := conn.Write(frameBytes(wire.FrameControl, body)); err != nil {
					t.Fatal(err)
				}
				var r Remote
				select {
				case r = <-removed:
				case <-time.After(testHealthy / 2):
					t.Fatalf("link still up %v after a control frame with a stray byte", testHealthy/2)
				}
				if d := time.Since(start); d != 0 {
					t.Fatalf("link dropped %v after the frame, want at once", d)
				}
				if r.Addr() != "evil:1" {
					t.Fatalf("removed %v, want evil:1", r)
				}
				if m := string(r.Meta()); m == "applied" {
					t.Fatal("the message of the bad frame was applied")
				}
			})
		})
	}
}
