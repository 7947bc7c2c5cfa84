package cluster

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

// pair starts a and b on nw and links them.
func pair(t *testing.T, nw *memory.Network, opts ...Option) (a, b *Node) {
	t.Helper()
	a = newMemNode(t, nw, "a:1", opts...)
	b = newMemNode(t, nw, "b:1", opts...)
	if err := a.Add("b:1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, func() bool { return len(b.Remotes()) == 1 }, func() string { return meshReport([]*Node{a, b}) })
	synctest.Wait() // the events of the join are delivered
	return a, b
}

func TestSilentPeerRemovedThenRedialled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, _ := pair(t, nw)
		ev := record(a)
		removed := make(chan time.Time, 1)
		a.RemoteRemoved(func(Remote) { removed <- time.Now() })
		start := time.Now()
		nw.BlackHole("b:1")
		at := <-removed
		// Removed after the network timeout of silence, not before, and
		// not much after (the last frame may have arrived up to one
		// healthy interval before the black hole).
		if d := at.Sub(start); d < testTimeout-testHealthy || d > testTimeout+testHealthy {
			t.Fatalf("silent peer removed after %v, want about the network timeout %v", d, testTimeout)
		}
		t.Logf("silent peer removed %v (virtual) after it went silent", at.Sub(start))
		a.mu.Lock()
		st := a.table.remotes["b:1"].state()
		a.mu.Unlock()
		if st == StateUp {
			t.Fatalf("state after removal = %v", st)
		}
		// While it stays silent, redials keep failing: no RemoteAdded.
		time.Sleep(5 * time.Second)
		if got := ev.get(); len(got) != 1 || !strings.HasPrefix(got[0], "-b:1") {
			t.Fatalf("events while silent: %v", got)
		}
		nw.Unblackhole("b:1")
		eventually(t, 3*time.Second, func() bool { return len(a.Remotes()) == 1 }, func() string { return meshReport([]*Node{a}) })
		got := ev.get()
		if len(got) != 2 || !strings.HasPrefix(got[1], "+b:1") || strings.TrimPrefix(got[0], "-") != strings.TrimPrefix(got[1], "+") {
			t.Fatalf("events = %v, want -b:1 then +b:1 of the same instance", got)
		}
		if a.stats.reconnects.Load() < 2 {
			t.Fatalf("reconnect attempts = %d, want several with backoff", a.stats.reconnects.Load())
		}
	})
}

func TestBackoffIsCappedAndJittered(t *testing.T) {
	base, limit := 100*time.Millisecond, 2*time.Second
	seen := map[time.Duration]bool{}
	for attempt := range 12 {
		want := base << attempt
		if want > limit {
			want = limit
		}
		for range 50 {
			d := backoff(base, limit, attempt)
			if d < want/2 || d > want {
				t.Fatalf("backoff(attempt %d) = %v, want in [%v, %v]", attempt, d, want/2, want)
			}
			seen[d] = true
		}
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct delays in 600 draws: no jitter", len(seen))
	}
	if d := backoff(base, limit, 1000); d > limit {
		t.Fatalf("backoff(1000) = %v exceeds the cap", d)
	}
}

func TestKilledPeerDetectedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, _ := pair(t, nw)
		removed := make(chan time.Time, 1)
		a.RemoteRemoved(func(Remote) { removed <- time.Now() })
		start := time.Now()
		nw.Kill("b:1")
		at := <-removed
		if d := at.Sub(start); d >= testHealthy {
			t.Fatalf("killed peer removed after %v; a closed connection must be seen at once", d)
		}
	})
}

func TestRestartedPeerReplacesOldEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, b := pair(t, nw)
		ev := record(a)
		old := b.Instance()
		nw.Kill("b:1")
		b.Close()
		b2 := newMemNode(t, nw, "b:1")
		if err := b2.Add("a:1"); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Second, func() bool { return len(ev.get()) == 2 }, func() string { return fmt.Sprint(ev.get()) })
		want := []string{fmt.Sprintf("-b:1#%x", old), fmt.Sprintf("+b:1#%x", b2.Instance())}
		if got := ev.get(); !slices.Equal(got, want) {
			t.Fatalf("events = %v, want %v", got, want)
		}
		if rs := a.Remotes(); len(rs) != 1 || rs[0].Instance() != b2.Instance() {
			t.Fatalf("a knows %#v, want only the new instance", rs)
		}
	})
}

// A restarted peer whose old link still looks healthy (its goodbye and
// its death were both lost) takes over once a dial back to its address
// answers with the new instance.
func TestRestartWhileOldLinkLooksUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, b := pair(t, nw, WithNetworkTimeout(time.Hour), WithHealthyInterval(time.Minute))
		ev := record(a)
		old := b.Instance()
		// Move b's old node out of the way without a's noticing.
		nw.CutLink("a:1", "b:1")
		b.Close() // its goodbye is lost
		nw.RestoreLink("a:1", "b:1")
		b2 := newMemNode(t, nw, "b:1", WithNetworkTimeout(time.Hour), WithHealthyInterval(time.Minute))
		if err := b2.Add("a:1"); err != nil {
			t.Fatalf("restarted peer's Add: %v", err)
		}
		eventually(t, 5*time.Second, func() bool { return len(ev.get()) == 2 }, func() string { return fmt.Sprint(ev.get()) })
		want := []string{fmt.Sprintf("-b:1#%x", old), fmt.Sprintf("+b:1#%x", b2.Instance())}
		if got := ev.get(); !slices.Equal(got, want) {
			t.Fatalf("events = %v, want %v", got, want)
		}
	})
}

func TestSlowInboxRemovesNobody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, b := pair(t, nw, WithInboxSize(8), WithSendQueueSize(16))
		evA, evB := record(a), record(b)
		ra := b.Remotes()[0] // a, as b sees it
		rb := a.Remotes()[0]
		const total = 20000 // far more than the inbox, queue and pipe hold
		payload := make([]byte, 256)
		sent := make(chan error, 1)
		go func() {
			for i := range total {
				payload[0], payload[1], payload[2] = byte(i>>16), byte(i>>8), byte(i)
				for {
					err := a.Send(rb, payload)
					if err == ErrSendTimeout {
						continue // the receiver is slow, not gone
					}
					if err != nil {
						sent <- err
						return
					}
					break
				}
			}
			sent <- nil
		}()
		// b's application does not read for ten network timeouts; b keeps
		// sending to a meanwhile, so both directions are exercised.
		for range 10 {
			time.Sleep(testTimeout)
			if err := b.Send(ra, []byte("still here")); err != nil {
				t.Fatalf("b.Send while its inbox is full: %v", err)
			}
		}
		if e := append(evA.get(), evB.get()...); len(e) != 0 {
			t.Fatalf("membership changed while b's inbox was full: %v", e)
		}
		go func() {
			for range a.Inbox {
			}
		}()
		for i := range total {
			m := <-b.Inbox
			got := int(m.Payload[0])<<16 | int(m.Payload[1])<<8 | int(m.Payload[2])
			if got != i {
				t.Fatalf("message %d arrived as number %d: order broken", i, got)
			}
		}
		if err := <-sent; err != nil {
			t.Fatalf("sender: %v", err)
		}
		if e := append(evA.get(), evB.get()...); len(e) != 0 {
			t.Fatalf("membership changed: %v", e)
		}
	})
}
