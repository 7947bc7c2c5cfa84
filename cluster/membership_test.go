package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

// memCluster starts n nodes named node0:1 ... on nw.
func memCluster(t *testing.T, nw *memory.Network, n int, opts ...Option) []*Node {
	t.Helper()
	nodes := make([]*Node, n)
	for i := range nodes {
		nodes[i] = newMemNode(t, nw, fmt.Sprintf("node%d:1", i), opts...)
	}
	return nodes
}

func TestChainOf32ConvergesToFullMesh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		nodes := memCluster(t, nw, 32)
		for i := 1; i < len(nodes); i++ {
			prev := nodes[i-1].AdvertiseAddr()
			if err := nodes[i].Add(prev); err != nil {
				t.Fatalf("node%d.Add(%s): %v", i, prev, err)
			}
			// Add returns after the handshake: the link is already up.
			found := false
			for _, r := range nodes[i].Remotes() {
				found = found || r.Addr() == prev
			}
			if !found {
				t.Fatalf("node%d: Add(%s) returned before the remote was added", i, prev)
			}
		}
		start := time.Now()
		eventually(t, 10*time.Second, func() bool { return fullMesh(nodes) }, func() string { return meshReport(nodes) })
		t.Logf("32-node chain converged %v (virtual) after the last Add", time.Since(start))
	})
}

func TestNeverAddsSelf(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		// b advertises an alias of itself, so only the instance id tells.
		a := newMemNode(t, nw, "a:1")
		if err := a.Add("a:1"); !errors.Is(err, ErrSelf) {
			t.Fatalf("Add(own address) = %v, want ErrSelf", err)
		}
		b := newMemNode(t, nw, "b:1", WithAdvertiseAddr("b-alias:1"))
		if err := b.Add("b:1"); !errors.Is(err, ErrSelf) {
			t.Fatalf("Add(own listen address under another name) = %v, want ErrSelf", err)
		}
		// Gossip naming a node itself does not make it dial itself.
		c := newMemNode(t, nw, "c:1")
		if err := c.Add("a:1"); err != nil {
			t.Fatal(err)
		}
		if err := b.Add("a:1"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * testTimeout)
		for _, n := range []*Node{a, b, c} {
			for _, r := range n.Remotes() {
				if r.Instance() == n.Instance() {
					t.Fatalf("%s lists itself", n.AdvertiseAddr())
				}
			}
			if len(n.Remotes()) != 2 {
				t.Fatalf("want a mesh of 3: %s", meshReport([]*Node{a, b, c}))
			}
		}
	})
}

// linkOf returns n's live link to addr (test only).
func linkOf(n *Node, addr string) *link {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e := n.table.remotes[addr]; e != nil {
		return e.link
	}
	return nil
}

func TestSimultaneousAddMakesOneLink(t *testing.T) {
	for i := range 40 {
		synctest.Test(t, func(t *testing.T) {
			nw := memory.NewNetwork(memory.WithSeed(int64(i)))
			defer nw.Close()
			nw.SetLatency(time.Millisecond, time.Millisecond)
			a := newMemNode(t, nw, "a:1")
			b := newMemNode(t, nw, "b:1")
			var wg sync.WaitGroup
			var errA, errB error
			wg.Go(func() { errA = a.Add("b:1") })
			wg.Go(func() { errB = b.Add("a:1") })
			wg.Wait()
			if errA != nil || errB != nil {
				t.Fatalf("round %d: Add errors: a=%v b=%v", i, errA, errB)
			}
			time.Sleep(3 * testTimeout)
			la, lb := linkOf(a, "b:1"), linkOf(b, "a:1")
			if la == nil || lb == nil {
				t.Fatalf("round %d: no link: %s", i, meshReport([]*Node{a, b}))
			}
			// One link: both ends are the same conn.
			if la.conn.LocalAddr().String() != lb.conn.RemoteAddr().String() ||
				la.conn.RemoteAddr().String() != lb.conn.LocalAddr().String() {
				t.Fatalf("round %d: two links: a uses %v->%v, b uses %v->%v", i,
					la.conn.LocalAddr(), la.conn.RemoteAddr(), lb.conn.LocalAddr(), lb.conn.RemoteAddr())
			}
			if la.dialed == lb.dialed {
				t.Fatalf("round %d: both ends think they dialled: %v", i, la.dialed)
			}
		})
	}
}

func TestAddUnreachableFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a := newMemNode(t, nw, "a:1")
		if err := a.Add("nobody:1"); err == nil {
			t.Fatal("Add to an address where nothing listens succeeded")
		}
		if len(a.Remotes()) != 0 {
			t.Fatalf("remotes after failed Add: %v", a.Remotes())
		}
		// A failed Add leaves no entry behind and no redial.
		a.mu.Lock()
		left := len(a.table.remotes)
		a.mu.Unlock()
		if left != 0 {
			t.Fatalf("%d entries left after a failed Add", left)
		}
	})
}

// An Add in progress ends when the node closes, not at its own timeout:
// both while the transport dials (a cut link makes the dial hang) and
// while the handshake waits (a listener that never answers). Its error
// says why: it matches ErrClosed.
func TestCloseEndsAddInProgress(t *testing.T) {
	for _, cut := range []bool{true, false} {
		t.Run(fmt.Sprintf("dialHangs=%v", cut), func(t *testing.T) { testCloseEndsAdd(t, cut) })
	}
}

func testCloseEndsAdd(t *testing.T, cut bool) {
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
		a := newMemNode(t, nw, "a:1", WithNetworkTimeout(time.Hour), WithHealthyInterval(time.Minute))
		if cut {
			nw.CutLink("a:1", "tarpit:1")
		}
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- a.AddContext(context.Background(), "tarpit:1") }()
		synctest.Wait() // the dial or the handshake is waiting
		a.Close()
		err = <-done
		if err == nil {
			t.Fatal("Add to a silent listener succeeded")
		}
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Add cut short by Close returned %v, which does not match ErrClosed", err)
		}
		if d := time.Since(start); d >= time.Minute {
			t.Fatalf("Add returned %v after Close began; it waited for its own timeout", d)
		}
	})
}
