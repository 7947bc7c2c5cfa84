package cluster

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

func TestCloseRemoteIsGracefulAndSticks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		nodes := memCluster(t, nw, 3) // node0 closes node1; node2 knows both
		for i := 1; i < 3; i++ {
			if err := nodes[i].Add(nodes[0].AdvertiseAddr()); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, time.Second, func() bool { return fullMesh(nodes) }, func() string { return meshReport(nodes) })
		synctest.Wait()
		ev0, ev1 := record(nodes[0]), record(nodes[1])
		var r1 Remote
		for _, r := range nodes[0].Remotes() {
			if r.Addr() == "node1:1" {
				r1 = r
			}
		}
		if err := nodes[0].CloseRemote(r1); err != nil {
			t.Fatal(err)
		}
		if err := nodes[0].Send(r1, []byte("x")); !errors.Is(err, ErrUnknownRemote) {
			t.Fatalf("Send to a closed remote = %v, want ErrUnknownRemote", err)
		}
		// node2 keeps gossiping both to each other (anti-entropy runs every
		// healthy interval); the closed pair must stay apart.
		time.Sleep(20 * testTimeout)
		if len(nodes[0].Remotes()) != 1 || len(nodes[1].Remotes()) != 1 || len(nodes[2].Remotes()) != 2 {
			t.Fatalf("closed remote came back: %s", meshReport(nodes))
		}
		if got := ev0.get(); len(got) != 1 || got[0][0] != '-' {
			t.Fatalf("node0 events %v, want one removal", got)
		}
		if got := ev1.get(); len(got) != 1 || got[0][0] != '-' {
			t.Fatalf("node1 events %v, want one removal", got)
		}
		if n := nodes[0].stats.reconnects.Load() + nodes[1].stats.reconnects.Load(); n != 0 {
			t.Fatalf("%d reconnect attempts after a graceful close", n)
		}
		// An explicit Add brings it back, from either side.
		if err := nodes[1].Add("node0:1"); err != nil {
			t.Fatalf("explicit Add after CloseRemote: %v", err)
		}
		eventually(t, time.Second, func() bool { return fullMesh(nodes) }, func() string { return meshReport(nodes) })
	})
}

func TestCloseSaysGoodbyeToAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		nodes := memCluster(t, nw, 4)
		for i := 1; i < 4; i++ {
			if err := nodes[i].Add(nodes[i-1].AdvertiseAddr()); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, time.Second, func() bool { return fullMesh(nodes) }, func() string { return meshReport(nodes) })
		start := time.Now()
		if err := nodes[0].Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d >= testHealthy {
			t.Fatalf("Close took %v: it waited out the linger instead of the peers' close", d)
		}
		if _, ok := <-nodes[0].Inbox; ok {
			t.Fatal("Inbox not closed after Close")
		}
		rest := nodes[1:]
		eventually(t, testHealthy, func() bool { return fullMesh(rest) }, func() string { return meshReport(rest) })
		time.Sleep(20 * testTimeout)
		for _, n := range rest {
			if got := n.stats.reconnects.Load(); got != 0 {
				t.Fatalf("%s redialled a node that left: %d attempts", n.AdvertiseAddr(), got)
			}
		}
		if !fullMesh(rest) {
			t.Fatalf("after leave: %s", meshReport(rest))
		}
		// Close is idempotent, and methods after it fail cleanly.
		if err := nodes[0].Close(); err != nil {
			t.Fatal(err)
		}
		if err := nodes[0].Add("node1:1"); !errors.Is(err, ErrClosed) {
			t.Fatalf("Add after Close = %v, want ErrClosed", err)
		}
		if err := nodes[0].Broadcast([]byte("x")); !errors.Is(err, ErrClosed) {
			t.Fatalf("Broadcast after Close = %v, want ErrClosed", err)
		}
	})
}

// The seed panicked when Close met a full Inbox.
func TestCloseWithFullInbox(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, b := pair(t, nw, WithInboxSize(2))
		rb := a.Remotes()[0]
		for range 100 {
			if err := a.Send(rb, []byte("fill")); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(testHealthy) // b's reader is now blocked on the full Inbox
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		n := 0
		for range b.Inbox {
			n++
		}
		if n != 2 {
			t.Fatalf("drained %d messages after Close, want the 2 the Inbox held", n)
		}
	})
}

// Close must not hang on a writer blocked by a peer that does not read.
func TestCloseWhileWriterBlocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithBufferSize(1024))
		defer nw.Close()
		a, b := pair(t, nw, WithInboxSize(1), WithSendQueueSize(2))
		rb := a.Remotes()[0]
		for a.Send(rb, make([]byte, 512)) == nil {
		} // until the queue stays full: a's writer is blocked in Write
		start := time.Now()
		a.Close()
		if d := time.Since(start); d > 2*testHealthy {
			t.Fatalf("Close took %v with a blocked writer", d)
		}
		_ = b
	})
}
