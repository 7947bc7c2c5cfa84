package cluster

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

// A five-node cluster changes its secret in three steps, one node at a
// time, while every node sends to every other: no link among them drops
// and no message is lost. Between any two SetSecrets calls a new node, with
// the secrets of the step under way, joins and handshakes with every
// node, whatever step each is at. After the last step a node that has only
// the old secret is refused, and one with the new joins.
func TestSecretRotationWithoutDowntime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		oldS, newS := []byte("old secret, sixteen bytes+"), []byte("new secret, sixteen bytes+")
		nw := memory.NewNetwork()
		defer nw.Close()
		var nodes []*Node
		var mu sync.Mutex
		var drops []string
		for i := range 5 {
			n := newMemNode(t, nw, fmt.Sprintf("n%d:1", i), WithSecret(oldS))
			n.OnEvent(func(e Event) {
				if e.Kind == EventRemoved && strings.HasPrefix(e.Remote.Addr(), "n") {
					mu.Lock()
					drops = append(drops, fmt.Sprintf("%s lost %s (%s)", n.AdvertiseAddr(), e.Remote.Addr(), e.Reason))
					mu.Unlock()
				}
			})
			if i > 0 {
				if err := n.Add("n0:1"); err != nil {
					t.Fatal(err)
				}
			}
			nodes = append(nodes, n)
		}
		synctest.Wait()
		if !fullMesh(nodes) {
			t.Fatalf("no full mesh:%s", meshReport(nodes))
		}

		// Every node sends numbered messages to every other until stopped;
		// every node checks they arrive in order, none missing.
		stop := make(chan struct{})
		var senders, readers sync.WaitGroup
		sent := make([]map[string]int, len(nodes))
		got := make([]map[string]int, len(nodes))
		for i, n := range nodes {
			sent[i], got[i] = map[string]int{}, map[string]int{}
			senders.Go(func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(10 * time.Millisecond):
					}
					for _, r := range n.Remotes() {
						if !strings.HasPrefix(r.Addr(), "n") {
							continue
						}
						if err := n.Send(r, fmt.Appendf(nil, "%d", sent[i][r.Addr()])); err != nil {
							t.Errorf("%s -> %s: %v", n.AdvertiseAddr(), r.Addr(), err)
							return
						}
						sent[i][r.Addr()]++
					}
				}
			})
			readers.Go(func() {
				for m := range n.Inbox {
					from := m.From.Addr()
					if want := fmt.Sprint(got[i][from]); string(m.Payload) != want {
						t.Errorf("%s from %s: message %s, want %s", n.AdvertiseAddr(), from, m.Payload, want)
					}
					got[i][from]++
				}
			})
		}

		joiners := 0
		join := func(step string, secrets ...[]byte) {
			t.Helper()
			joiners++
			j, err := New(fmt.Sprintf("j%d:1", joiners), testOpts(WithTransport(nw), WithSecrets(secrets[0], secrets[1:]...))...)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if err := j.Add("n0:1"); err != nil {
				t.Fatalf("%s: a new node could not join: %v", step, err)
			}
			synctest.Wait()
			if len(j.Remotes()) != len(nodes) {
				t.Fatalf("%s: a new node linked with %d of %d nodes: %v", step, len(j.Remotes()), len(nodes), j.Remotes())
			}
		}
		steps := []struct {
			name    string
			secrets [][]byte
		}{
			{"1: accept the new", [][]byte{oldS, newS}},
			{"2: prove with the new", [][]byte{newS, oldS}},
			{"3: drop the old", [][]byte{newS}},
		}
		for _, st := range steps {
			for _, n := range nodes {
				if err := n.SetSecrets(st.secrets[0], st.secrets[1:]...); err != nil {
					t.Fatal(err)
				}
				time.Sleep(100 * time.Millisecond) // traffic flows meanwhile
				join(st.name, st.secrets...)
			}
		}

		// Only the old secret: refused, by every node.
		late := newMemNode(t, nw, "late:1", WithSecret(oldS))
		for _, n := range nodes {
			if err := late.Add(n.AdvertiseAddr()); !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("a node with only the old secret joining %s after the rotation: %v, want ErrUnauthorized", n.AdvertiseAddr(), err)
			}
		}
		join("after", newS)

		close(stop)
		senders.Wait()
		synctest.Wait() // the last messages arrive
		mu.Lock()
		dropped := slices.Clone(drops)
		mu.Unlock()
		for _, n := range nodes {
			n.Close()
		}
		readers.Wait()
		if len(dropped) > 0 {
			t.Fatalf("links dropped during the rotation: %v", dropped)
		}
		total := 0
		for i, n := range nodes {
			for j, m := range nodes {
				if i == j {
					continue
				}
				s, g := sent[i][m.AdvertiseAddr()], got[j][n.AdvertiseAddr()]
				if s != g || s == 0 {
					t.Errorf("%s -> %s: %d sent, %d received", n.AdvertiseAddr(), m.AdvertiseAddr(), s, g)
				}
				total += s
			}
		}
		t.Logf("%d messages during the rotation, %d new nodes joined, none lost", total, joiners)
	})
}

// The listener answers with the secret the dialer proved with, so a
// dialer that has only a secret the listener merely accepts is admitted
// and believes the answer (a node that went ahead of the rotation).
func TestListenerAnswersWithTheDialersSecret(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := []byte("secret a, sixteen bytes+"), []byte("secret b, sixteen bytes+")
		nw := memory.NewNetwork()
		defer nw.Close()
		listener := newMemNode(t, nw, "l:1", WithSecrets(a, b))
		dialer := newMemNode(t, nw, "d:1", WithSecret(b))
		if err := dialer.Add("l:1"); err != nil {
			t.Fatalf("dialer with only the listener's accepted secret: %v", err)
		}
		if len(listener.Remotes()) != 1 {
			t.Fatal("no link")
		}
		if err := newMemNode(t, nw, "x:1", WithSecret([]byte("neither a nor b, 16 bytes"))).Add("l:1"); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("a third secret: %v, want ErrUnauthorized", err)
		}
		for _, bad := range [][][]byte{{[]byte("short")}, {a, []byte("short")}, make([][]byte, MaxSecrets+1)} {
			if err := listener.SetSecrets(bad[0], bad[1:]...); err == nil {
				t.Fatalf("SetSecrets accepted %d secrets, one short or too many", len(bad))
			}
		}
	})
}
