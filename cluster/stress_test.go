package cluster

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The seed deadlocked within 0.2 s of normal use (a read lock taken twice
// on one path). Every public method, from many goroutines at once, over
// real TCP with the race detector, while membership churns: it must finish.
func TestConcurrentUseDoesNotDeadlock(t *testing.T) {
	nodes := make([]*Node, 4)
	for i := range nodes {
		nodes[i] = newTCPNode(t)
	}
	for i := 1; i < len(nodes); i++ {
		if err := nodes[i].Add(nodes[0].AdvertiseAddr()); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, func() bool { return fullMesh(nodes) }, func() string { return meshReport(nodes) })
	var callbacks atomic.Int64
	for _, n := range nodes {
		n.RemoteChanged(func(rs []Remote) {
			callbacks.Add(1)
			n.Remotes() // re-entering the node from a callback
			n.Stats()
		})
		go func() {
			for range n.Inbox {
			}
		}()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, n := range nodes {
		peer := nodes[(i+1)%len(nodes)]
		wg.Go(func() { // senders
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, r := range n.Remotes() {
					n.Send(r, []byte("payload"))
				}
				n.Broadcast([]byte("broadcast"))
			}
		})
		wg.Go(func() { // readers of state
			for {
				select {
				case <-stop:
					return
				default:
				}
				n.Stats()
				n.Remotes()
				n.SetMeta([]byte("m"))
			}
		})
		wg.Go(func() { // membership churn: close a remote, add it back
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, r := range n.Remotes() {
					if r.Addr() == peer.AdvertiseAddr() {
						n.CloseRemote(r)
					}
				}
				n.Add(peer.AdvertiseAddr())
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("API calls still blocked 30 s after the load stopped: deadlock")
	}
	if callbacks.Load() == 0 {
		t.Fatal("no membership change happened: the churn did not run")
	}
	for _, n := range nodes {
		closed := make(chan struct{})
		go func() { n.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			t.Fatalf("Close of %s hung after concurrent use", n.AdvertiseAddr())
		}
	}
}
