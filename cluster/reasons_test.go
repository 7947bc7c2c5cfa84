package cluster

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

// eventLog collects a node's OnEvent events, as short strings, and checks
// that the seed's callbacks saw the same additions and removals.
type eventLog struct {
	mu           sync.Mutex
	events       []string
	errs         []error
	adds, remove int
}

func logEvents(n *Node) *eventLog {
	l := &eventLog{}
	n.OnEvent(func(e Event) {
		l.mu.Lock()
		defer l.mu.Unlock()
		s := fmt.Sprintf("%s %s", e.Kind, e.Remote.Addr())
		switch e.Kind {
		case EventRemoved:
			s += " " + e.Reason.String()
			l.errs = append(l.errs, e.Err)
		case EventMetaChanged:
			s += fmt.Sprintf(" %q", e.Remote.Meta())
		}
		l.events = append(l.events, s)
	})
	n.RemoteAdded(func(Remote) { l.mu.Lock(); l.adds++; l.mu.Unlock() })
	n.RemoteRemoved(func(Remote) { l.mu.Lock(); l.remove++; l.mu.Unlock() })
	return l
}

func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

// An application can tell why a remote went away (it left, was lost, was
// replaced by a restarted instance, or was closed here), and hears when a
// remote's metadata changes; RemoteAdded and RemoteRemoved keep working.
func TestEventsSayWhyARemoteWentAway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a := newMemNode(t, nw, "a:1")
		log := logEvents(a)
		var peers []*Node
		for _, addr := range []string{"left:1", "lost:1", "restarted:1", "closed:1"} {
			p := newMemNode(t, nw, addr)
			if err := a.Add(addr); err != nil {
				t.Fatal(err)
			}
			peers = append(peers, p)
		}
		synctest.Wait()
		log.take()
		check := func(what string, want ...string) {
			t.Helper()
			synctest.Wait()
			if got := log.take(); !slices.Equal(got, want) {
				t.Fatalf("%s: events %q, want %q", what, got, want)
			}
		}

		peers[0].Close()
		check("a peer's Close", "removed left:1 left")

		nw.Kill("lost:1")
		peers[1].close(false)
		check("a crash", "removed lost:1 lost")
		if err := log.errs[len(log.errs)-1]; err == nil {
			t.Fatal("a lost remote's event carries no error")
		}

		nw.Kill("restarted:1")
		peers[2].close(false)
		synctest.Wait()
		log.take() // lost, then redialled with backoff
		again := newMemNode(t, nw, "restarted:1")
		time.Sleep(2 * time.Second) // the redial finds the new instance
		check("a restart", "added restarted:1")
		_ = again

		for _, r := range a.Remotes() {
			if r.Addr() == "closed:1" {
				if err := a.CloseRemote(r); err != nil {
					t.Fatal(err)
				}
			}
		}
		check("CloseRemote", "removed closed:1 closed")

		if err := again.SetMeta([]byte("zone=b")); err != nil {
			t.Fatal(err)
		}
		check("SetMeta", `meta restarted:1 "zone=b"`)
		// The same metadata again (as anti-entropy repeats it) is no event.
		time.Sleep(5 * testHealthy)
		check("anti-entropy")

		if log.adds != 5 || log.remove != 4 {
			t.Fatalf("RemoteAdded ran %d times, RemoteRemoved %d; want 5 and 4", log.adds, log.remove)
		}
	})
}

// A restarted instance that answers at a live remote's address replaces
// it: the old one is removed as replaced, then the new one is added.
func TestEventReplaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, b := pair(t, nw)
		log := logEvents(a)
		// b restarts, and its death is not seen (its link stays silent but
		// up); the new instance dials a, which checks the address.
		nw.BlackHole("b:1")
		b.close(false)
		nw.Unblackhole("b:1")
		b2 := newMemNode(t, nw, "b:1")
		if err := b2.Add("a:1"); err != nil && !errors.Is(err, ErrHandshake) {
			t.Fatal(err)
		}
		synctest.Wait()
		if got, want := log.take(), []string{"removed b:1 replaced", "added b:1"}; !slices.Equal(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
	})
}
