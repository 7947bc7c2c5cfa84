package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/transport/tcp"
)

// The important paths again, over real TCP on loopback, in real time.

// countingTCP counts dials, to check that messages share one connection.
type countingTCP struct {
	*tcp.Transport
	dials atomic.Int64
}

func (c *countingTCP) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c.dials.Add(1)
	return c.Transport.Dial(ctx, addr)
}

func newTCPNode(t *testing.T, opts ...Option) *Node {
	t.Helper()
	n, err := New("127.0.0.1:0", append(testOpts(WithNetworkTimeout(2*time.Second), WithHealthyInterval(200*time.Millisecond)), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestTCPChainConvergesAndDelivers(t *testing.T) {
	nodes := make([]*Node, 8)
	tr, _ := tcp.New()
	ct := &countingTCP{Transport: tr}
	for i := range nodes {
		nodes[i] = newTCPNode(t, WithTransport(ct))
	}
	for i := 1; i < len(nodes); i++ {
		if err := nodes[i].Add(nodes[i-1].AdvertiseAddr()); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, func() bool { return fullMesh(nodes) }, func() string { return meshReport(nodes) })
	dialsAtMesh := ct.dials.Load()
	// Many messages, one connection per pair: no dial per message.
	a, b := nodes[0], nodes[7]
	var to Remote
	for _, r := range a.Remotes() {
		if r.Addr() == b.AdvertiseAddr() {
			to = r
		}
	}
	const total = 20000
	go func() {
		for i := range total {
			if err := a.Send(to, []byte(fmt.Sprint(i))); err != nil {
				t.Errorf("send: %v", err)
				return
			}
		}
	}()
	for i := range total {
		select {
		case m := <-b.Inbox:
			if string(m.Payload) != fmt.Sprint(i) {
				t.Fatalf("message %d arrived as %q", i, m.Payload)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d never arrived", i)
		}
	}
	if d := ct.dials.Load() - dialsAtMesh; d != 0 {
		t.Fatalf("%d dials while sending %d messages over live links", d, total)
	}
	if most := int64(len(nodes) * (len(nodes) - 1)); dialsAtMesh > most {
		t.Fatalf("%d dials to build a mesh of %d nodes", dialsAtMesh, len(nodes))
	}
}

func TestTCPCrashDetectedAndRestartReadded(t *testing.T) {
	a := newTCPNode(t)
	b := newTCPNode(t)
	addr := b.AdvertiseAddr()
	removed := make(chan time.Time, 1)
	added := make(chan Remote, 4)
	a.RemoteRemoved(func(Remote) { removed <- time.Now() })
	a.RemoteAdded(func(r Remote) { added <- r })
	if err := a.Add(addr); err != nil {
		t.Fatal(err)
	}
	if r := <-added; r.Instance() != b.Instance() {
		t.Fatalf("added %#v", r)
	}
	start := time.Now()
	b.close(false) // crash: no goodbye
	select {
	case at := <-removed:
		t.Logf("crashed peer removed after %v (network timeout 2s)", at.Sub(start))
	case <-time.After(10 * time.Second):
		t.Fatal("crashed peer never removed")
	}
	b2, err := New(addr, testOpts(WithNetworkTimeout(2*time.Second), WithHealthyInterval(200*time.Millisecond))...)
	if err != nil {
		t.Skipf("cannot listen again on %s: %v", addr, err)
	}
	defer b2.Close()
	select {
	case r := <-added:
		if r.Instance() != b2.Instance() {
			t.Fatalf("re-added instance %x, want the restarted %x", r.Instance(), b2.Instance())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("restarted peer never re-added by the reconnect loop")
	}
}

func TestTCPGracefulLeave(t *testing.T) {
	a := newTCPNode(t)
	b := newTCPNode(t)
	if err := a.Add(b.AdvertiseAddr()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return len(b.Remotes()) == 1 }, func() string { return "" })
	b.Close()
	eventually(t, 5*time.Second, func() bool { return len(a.Remotes()) == 0 }, func() string { return meshReport([]*Node{a}) })
	time.Sleep(500 * time.Millisecond) // a few reconnect intervals: none may happen
	if n := a.stats.reconnects.Load(); n != 0 {
		t.Fatalf("%d reconnect attempts after a goodbye", n)
	}
}

func TestTCPCodecMismatch(t *testing.T) {
	a := newTCPNode(t)
	b := newTCPNode(t, WithCodec(codec.JSON))
	if err := b.Add(a.AdvertiseAddr()); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("Add across codecs over TCP = %v, want ErrIncompatible", err)
	}
}

func TestTCPAddToSilentListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
	a := newTCPNode(t, WithNetworkTimeout(500*time.Millisecond), WithHealthyInterval(100*time.Millisecond))
	done := make(chan error, 1)
	go func() { done <- a.Add(ln.Addr().String()) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Add to a listener that never answers succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Add to a silent listener hung")
	}
}
