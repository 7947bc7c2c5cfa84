package memory_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/memory"
)

// Example shows the faults as a user's code sees them, through two plain
// net.Conn endpoints.
func Example() {
	ctx := context.Background()
	nw := memory.NewNetwork()
	defer nw.Close()

	l, _ := nw.Listen("server:7000")
	go func() { // an echo server
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()

	c, _ := nw.DialFrom(ctx, "client:7000", "server:7000")
	defer c.Close()
	buf := make([]byte, 5)
	c.Write([]byte("hello"))
	io.ReadFull(c, buf)
	fmt.Printf("echo: %s\n", buf)

	// A partition is silent: the write succeeds, no answer comes. As with
	// TCP, the bytes are not lost: they arrive once the partition heals.
	nw.Partition([]string{"client:7000"}, []string{"server:7000"})
	c.Write([]byte("held!"))
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err := c.Read(buf)
	fmt.Println("partitioned, read timed out:", errors.Is(err, os.ErrDeadlineExceeded))
	nw.Heal()
	c.SetReadDeadline(time.Time{})
	io.ReadFull(c, buf)
	fmt.Printf("healed, echo: %s\n", buf)

	// A crash is loud: the conn fails at once and the address refuses.
	nw.Kill("server:7000")
	_, err = c.Read(buf)
	fmt.Println("killed, conn reset:", errors.Is(err, memory.ErrConnReset))
	_, err = nw.Dial(ctx, "server:7000")
	fmt.Println("killed, dial refused:", errors.Is(err, transport.ErrRefused))

	// Output:
	// echo: hello
	// partitioned, read timed out: true
	// healed, echo: held!
	// killed, conn reset: true
	// killed, dial refused: true
}

// heartbeatReader is the kind of code a user tests on the memory network:
// it reads heartbeats and reports when the peer has been silent too long.
func heartbeatReader(c net.Conn, timeout time.Duration) error {
	b := make([]byte, 1)
	for {
		c.SetReadDeadline(time.Now().Add(timeout))
		if _, err := c.Read(b); err != nil {
			return err
		}
	}
}

// TestExampleSynctest is the pattern for whole-cluster tests: create the
// Network inside a synctest bubble, inject a fault, and assert on virtual
// time, which advances only when every goroutine is blocked and so makes
// the timings exact. (Example functions cannot start a bubble, which needs
// a *testing.T, so this one is a test.)
func TestExampleSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithTrace(func(s string) { t.Log(s) }))
		defer nw.Close()
		nw.SetLatency(20*time.Millisecond, 0)

		start := time.Now()
		l, _ := nw.Listen("b:1")
		defer l.Close()
		senderDone := make(chan struct{})
		go func() { // node a sends a heartbeat every second
			defer close(senderDone)
			c, err := nw.DialFrom(context.Background(), "a:1", "b:1")
			if err != nil {
				return
			}
			defer c.Close()
			for {
				if _, err := c.Write([]byte{1}); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}()
		c, _ := l.Accept() // at 40ms: a dial takes one round trip
		detected := make(chan error, 1)
		go func() { detected <- heartbeatReader(c, 3*time.Second) }()

		time.Sleep(time.Until(start.Add(10500 * time.Millisecond)))
		nw.Partition([]string{"a:1"}, []string{"b:1"})
		err := <-detected
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("heartbeatReader: %v", err)
		}
		// The last heartbeat, sent at 10.04s, arrived at 10.06s; the
		// silence is noticed 3s later.
		if got := time.Since(start); got != 13060*time.Millisecond {
			t.Fatalf("partition detected after %v, want 13.06s", got)
		}
		c.Close()
		nw.Kill("a:1") // crashes the sender's conn
		<-senderDone
	})
}

// leaderOf is the kind of cluster logic a user tests: every node takes
// the smallest address it knows, itself included, as the leader.
func leaderOf(n *cluster.Node) string {
	leader := n.AdvertiseAddr()
	for _, r := range n.Remotes() {
		leader = min(leader, r.Addr())
	}
	return leader
}

// TestExampleClusterLogic tests cluster logic on whole peerkit nodes: three
// nodes on one Network inside a synctest bubble; the leader is cut off,
// the others pick a new leader after the network timeout (virtual time,
// exact), and the heal brings it back. The test takes milliseconds.
func TestExampleClusterLogic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithSeed(1), memory.WithTrace(func(s string) { t.Log(s) }))
		defer nw.Close()
		opts := []cluster.Option{
			cluster.WithTransport(nw),
			cluster.WithHealthyInterval(100 * time.Millisecond),
			cluster.WithNetworkTimeout(500 * time.Millisecond),
			cluster.WithReconnectInterval(100 * time.Millisecond),
			cluster.WithMaxReconnectInterval(200 * time.Millisecond),
		}
		var nodes []*cluster.Node
		for _, addr := range []string{"a:1", "b:1", "c:1"} {
			n, err := cluster.New(addr, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close() // Close returns once the node's goroutines are gone
			nodes = append(nodes, n)
		}
		a, b, c := nodes[0], nodes[1], nodes[2]
		if err := b.Add("a:1"); err != nil {
			t.Fatal(err)
		}
		if err := c.Add("b:1"); err != nil { // c learns of a through b
			t.Fatal(err)
		}
		time.Sleep(time.Second) // virtual: gossip settles, no real waiting
		for _, n := range nodes {
			if got := leaderOf(n); got != "a:1" {
				t.Fatalf("%s: leader %s, want a:1", n.AdvertiseAddr(), got)
			}
		}

		nw.Partition([]string{"a:1"}, []string{"b:1", "c:1"})
		start := time.Now()
		for leaderOf(b) != "b:1" || leaderOf(c) != "b:1" {
			time.Sleep(10 * time.Millisecond)
		}
		// Silence is noticed after the network timeout, not before.
		if d := time.Since(start); d < 400*time.Millisecond || d > 700*time.Millisecond {
			t.Fatalf("new leader after %v, want about the 500ms network timeout", d)
		}
		if got := leaderOf(a); got != "a:1" {
			t.Fatalf("a, alone, follows %s", got)
		}

		nw.Heal()
		time.Sleep(time.Second) // reconnection with backoff, in virtual time
		for _, n := range nodes {
			if got := leaderOf(n); got != "a:1" {
				t.Fatalf("after the heal %s follows %s, want a:1", n.AdvertiseAddr(), got)
			}
		}
	})
}

// New validates the options; NewNetwork is the same for tests, and a
// network it returns with an invalid option fails every Listen and Dial.
func ExampleNew() {
	_, err := memory.New(memory.WithBufferSize(0))
	fmt.Println(err)
	nw, err := memory.New(memory.WithSeed(7), memory.WithBufferSize(64<<10))
	if err != nil {
		log.Fatal(err)
	}
	defer nw.Close()
	fmt.Println("ok")
	// Output:
	// memory: WithBufferSize: must be positive, got 0
	// ok
}
