package cluster

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

// Every message Send accepted is either written or counted as dropped,
// whatever ends its link while it is being sent: CloseRemote, the remote
// crashing, or this node closing. A frame queued after the writer drained
// its queue on the way out was lost without being counted.
//
// Each round has one link between a and b (nothing in a round reconnects
// the same instance), many goroutines Send on it until Send fails, and
// one of the three endings races them. After a has closed, the link's own
// counters, and the node's totals, must account for every accepted Send.
func TestEveryAcceptedSendIsWrittenOrDropped(t *testing.T) {
	rounds := 600
	if testing.Short() {
		rounds = 100
	}
	endings := []string{"CloseRemote", "remote crash", "Close"}
	var lost int
	for i := range rounds {
		ending := endings[i%len(endings)]
		accepted, written, dropped := sendRace(t, i, ending)
		if accepted != written+dropped {
			lost++
			t.Errorf("round %d (%s): %d Sends accepted, %d written + %d dropped = %d", i, ending, accepted, written, dropped, written+dropped)
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d rounds lost messages without counting them", lost, rounds)
	}
}

func sendRace(t *testing.T, round int, ending string) (accepted, written, dropped uint64) {
	nw := memory.NewNetwork(memory.WithSeed(int64(round)), memory.WithBufferSize(4096))
	defer nw.Close()
	opts := []Option{WithTransport(nw), WithSendQueueSize(4), WithInboxSize(1),
		WithHealthyInterval(50 * time.Millisecond), WithNetworkTimeout(time.Second)}
	a, err := New("a:1", opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New("b:1", opts...)
	if err != nil {
		t.Fatal(err)
	}
	// b drains slowly, so that a's queue is sometimes full and Send waits.
	var drain sync.WaitGroup
	drain.Go(func() {
		for range b.Inbox {
			if round%2 == 0 {
				time.Sleep(10 * time.Microsecond)
			}
		}
	})
	defer func() { b.close(false); drain.Wait() }()
	if err := a.Add("b:1"); err != nil {
		t.Fatal(err)
	}
	r := a.Remotes()[0]
	l := r.p.link.Load()
	if l == nil {
		t.Fatal("no link after Add")
	}
	var ok atomic.Uint64
	var senders sync.WaitGroup
	payload := []byte(fmt.Sprintf("round %d", round))
	for range 8 {
		senders.Go(func() {
			for a.Send(r, payload) == nil {
				ok.Add(1)
			}
		})
	}
	time.Sleep(time.Duration(round%5) * 100 * time.Microsecond)
	switch ending {
	case "CloseRemote":
		a.CloseRemote(r)
	case "remote crash":
		b.close(false)
	case "Close":
		a.Close()
	}
	senders.Wait()
	a.Close() // the link's goroutines have stopped when Close returns
	written, dropped = l.stats.msgsOut.Load(), l.stats.dropped.Load()
	// The node's totals hold the link's final counts: it is retired only
	// once nothing can count on it any more.
	if st := a.Stats(); st.MessagesSent != written || st.Dropped != dropped+l.stats.shed.Load() {
		t.Errorf("round %d (%s): Stats totals %d sent, %d dropped; the link counted %d written, %d dropped, %d shed",
			round, ending, st.MessagesSent, st.Dropped, written, dropped, l.stats.shed.Load())
	}
	return ok.Load(), written, dropped
}
