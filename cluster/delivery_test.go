package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

func TestSendErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, b := pair(t, nw, WithMaxMessageSize(1024))
		if err := a.Send(Remote{}, []byte("x")); !errors.Is(err, ErrUnknownRemote) {
			t.Fatalf("Send to the zero Remote = %v", err)
		}
		// A Remote of another node is unknown here.
		if err := a.Send(b.Remotes()[0], []byte("x")); !errors.Is(err, ErrUnknownRemote) {
			t.Fatalf("Send with another node's Remote = %v", err)
		}
		rb := a.Remotes()[0]
		if err := a.Send(rb, make([]byte, 1025)); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("oversized Send = %v", err)
		}
		nw.Kill("b:1")
		b.Close() // a crashed process does not redial
		eventually(t, time.Second, func() bool { return len(a.Remotes()) == 0 }, func() string { return "" })
		if err := a.Send(rb, []byte("x")); !errors.Is(err, ErrUnknownRemote) {
			t.Fatalf("Send to a removed remote = %v", err)
		}
	})
}

func TestSendCopiesPayloadAndKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		nodes := memCluster(t, nw, 4)
		for i := 1; i < 4; i++ {
			if err := nodes[i].Add("node0:1"); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, time.Second, func() bool { return fullMesh(nodes) }, func() string { return meshReport(nodes) })
		const perSender = 3000
		var wg sync.WaitGroup
		for _, s := range nodes[1:] {
			var to Remote
			for _, r := range s.Remotes() {
				if r.Addr() == "node0:1" {
					to = r
				}
			}
			wg.Go(func() {
				buf := make([]byte, 8) // reused for every Send
				for i := range perSender {
					binary.BigEndian.PutUint64(buf, uint64(i))
					if err := s.Send(to, buf); err != nil {
						t.Errorf("send %d: %v", i, err)
						return
					}
					binary.BigEndian.PutUint64(buf, 1<<63) // scribble after Send
				}
			})
		}
		next := map[string]uint64{}
		for range 3 * perSender {
			m := <-nodes[0].Inbox
			got := binary.BigEndian.Uint64(m.Payload)
			if got != next[m.From.Addr()] {
				t.Fatalf("from %s: got %d, want %d (reordered, or the caller's slice was read after Send)", m.From, got, next[m.From.Addr()])
			}
			next[m.From.Addr()]++
		}
		wg.Wait()
	})
}

func TestSendQueueFullWaitsThenFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithBufferSize(1024))
		defer nw.Close()
		a, _ := pair(t, nw, WithInboxSize(1), WithSendQueueSize(4))
		rb := a.Remotes()[0]
		payload := make([]byte, 512)
		var err error
		start := time.Now()
		for i := 0; i < 1000 && err == nil; i++ {
			err = a.Send(rb, payload)
		}
		if !errors.Is(err, ErrSendTimeout) {
			t.Fatalf("Send into a full queue = %v, want ErrSendTimeout", err)
		}
		if d := time.Since(start); d < testTimeout {
			t.Fatalf("Send gave up after %v, before the network timeout", d)
		}
		ctx, cancel := context.WithTimeout(context.Background(), testHealthy)
		defer cancel()
		if err := a.SendContext(ctx, rb, payload); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SendContext into a full queue = %v, want the context's error", err)
		}
		if len(a.Remotes()) != 1 {
			t.Fatal("a full send queue removed the remote")
		}
	})
}

func TestBroadcastNotStalledBySlowRemote(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithBufferSize(1024))
		defer nw.Close()
		nodes := memCluster(t, nw, 3, WithInboxSize(1), WithSendQueueSize(2))
		for i := 1; i < 3; i++ {
			if err := nodes[0].Add(nodes[i].AdvertiseAddr()); err != nil {
				t.Fatal(err)
			}
		}
		// node1 reads; node2 never does, so its queue fills.
		got := make(chan []byte, 100)
		go func() {
			for m := range nodes[1].Inbox {
				got <- m.Payload
			}
		}()
		for i := range 20 {
			start := time.Now()
			err := nodes[0].Broadcast([]byte(fmt.Sprint(i)))
			select {
			case p := <-got:
				if string(p) != fmt.Sprint(i) {
					t.Fatalf("node1 got %q, want %d", p, i)
				}
			case <-time.After(testHealthy):
				t.Fatalf("broadcast %d did not reach the healthy remote while the slow one was full (err %v, %v)", i, err, time.Since(start))
			}
		}
	})
}

func TestCallbacksInOrderOutsideLocksAndNonBlocking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		var logs logBuffer
		defer func() {
			if t.Failed() {
				t.Log(logs.String())
			}
		}()
		a := newMemNode(t, nw, "a:1", WithLogger(logs.logger()))
		release := make(chan struct{})
		var mu sync.Mutex
		var seen []string
		a.RemoteAdded(func(r Remote) {
			// Calling back into the node from a callback must not deadlock.
			_ = a.Remotes()
			_ = a.Send(r, []byte("welcome"))
			mu.Lock()
			seen = append(seen, "+"+r.Addr())
			mu.Unlock()
			if r.Addr() == "b:1" {
				<-release // block for a long time
			}
		})
		a.RemoteRemoved(func(r Remote) {
			mu.Lock()
			seen = append(seen, "-"+r.Addr())
			mu.Unlock()
		})
		var changes [][]string
		a.RemoteChanged(func(rs []Remote) {
			mu.Lock()
			changes = append(changes, addrs(rs))
			mu.Unlock()
		})
		b := newMemNode(t, nw, "b:1", WithLogger(logs.logger()))
		c := newMemNode(t, nw, "c:1", WithLogger(logs.logger()))
		if err := a.Add("b:1"); err != nil {
			t.Fatal(err)
		}
		if err := a.Add("c:1"); err != nil {
			t.Fatal(err)
		}
		// While the callback blocks, the node works: it sends, receives and
		// heartbeats, and removes nobody.
		rb := a.Remotes()[0]
		for i := range 5 {
			if err := a.Send(rb, []byte("ping")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(testTimeout)
			if err := b.Send(b.Remotes()[0], []byte("pong")); err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
			m := <-a.Inbox
			if string(m.Payload) != "pong" {
				t.Fatalf("a got %q", m.Payload)
			}
		}
		if len(a.Remotes()) != 2 {
			t.Fatalf("remotes lost while a callback blocked: %v", a.Remotes())
		}
		c.Close()
		eventually(t, time.Second, func() bool { return len(a.Remotes()) == 1 }, func() string { return "" })
		close(release)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		want := []string{"+b:1", "+c:1", "-c:1"}
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Fatalf("events in order %v, want %v", seen, want)
		}
		wantChanges := "[[b:1] [b:1 c:1] [b:1]]"
		if fmt.Sprint(changes) != wantChanges {
			t.Fatalf("RemoteChanged saw %v, want %s", changes, wantChanges)
		}
	})
}

// Nil callbacks are ignored: before, the dispatcher called them at the
// first event and the process crashed.
func TestNilCallbacksIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, b := pair(t, nw)
		a.RemoteAdded(nil)
		a.RemoteRemoved(nil)
		a.RemoteChanged(nil)
		a.OnEvent(nil)
		seen := make(chan Event, 4)
		a.OnEvent(func(e Event) { seen <- e })
		b.Close()
		select {
		case e := <-seen:
			if e.Kind != EventRemoved {
				t.Fatalf("first event %v, want a removal", e.Kind)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no removal seen")
		}
	})
}
