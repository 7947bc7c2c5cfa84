package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/transport/memory"
)

// Two nodes on loopback: node 1 joins node 2, then broadcasts.
func Example() {
	n1, err := cluster.New("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer n1.Close()
	n2, err := cluster.New("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer n2.Close()

	// Add returns once the handshake is done: n2 is a remote of n1.
	if err := n1.Add(n2.Addr().String()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("n1 knows", len(n1.Remotes()), "remote")

	if err := n1.Broadcast([]byte("Hello, world!")); err != nil {
		log.Fatal(err)
	}
	m := <-n2.Inbox
	fmt.Println(string(m.Payload), "from n1:", m.From.Addr() == n1.AdvertiseAddr())
	// Output:
	// n1 knows 1 remote
	// Hello, world! from n1: true
}

// Join a cluster through any one member; the node learns the rest.
func ExampleNode_Add() {
	seed, _ := cluster.New("127.0.0.1:0")
	defer seed.Close()
	other, _ := cluster.New("127.0.0.1:0")
	defer other.Close()
	if err := other.Add(seed.Addr().String()); err != nil {
		log.Fatal(err)
	}

	n, _ := cluster.New("127.0.0.1:0")
	defer n.Close()
	added := make(chan cluster.Remote, 2)
	n.RemoteAdded(func(r cluster.Remote) { added <- r })
	if err := n.Add(seed.Addr().String()); err != nil { // one address is enough
		log.Fatal(err)
	}
	<-added
	<-added // "other", learned from the seed
	fmt.Println("n knows", len(n.Remotes()), "remotes")
	// Output: n knows 2 remotes
}

// Send to one remote; messages from one sender arrive in order.
func ExampleNode_Send() {
	a, _ := cluster.New("127.0.0.1:0")
	defer a.Close()
	b, _ := cluster.New("127.0.0.1:0")
	defer b.Close()
	if err := a.Add(b.Addr().String()); err != nil {
		log.Fatal(err)
	}
	to := a.Remotes()[0]
	buf := []byte("first")
	a.Send(to, buf)
	copy(buf, "reuse") // Send copied the payload: reusing buf is safe
	a.Send(to, []byte("second"))
	fmt.Println(string((<-b.Inbox).Payload), string((<-b.Inbox).Payload))
	// Output: first second
}

// Switch the transport with one option; here the in-memory network, where
// node addresses are free-form.
func ExampleWithTransport() {
	nw := memory.NewNetwork()
	defer nw.Close()
	a, _ := cluster.New("alpha:1", cluster.WithTransport(nw))
	defer a.Close()
	b, _ := cluster.New("beta:1", cluster.WithTransport(nw))
	defer b.Close()
	if err := a.Add("beta:1"); err != nil {
		log.Fatal(err)
	}
	a.Broadcast([]byte("over memory"))
	m := <-b.Inbox
	fmt.Printf("%s from %s\n", m.Payload, m.From)
	// Output: over memory from alpha:1
}

// Test cluster logic in virtual time: inside a synctest bubble, with the
// memory network, a network timeout of minutes passes in microseconds.
// (Write this in a Test function; examples cannot start a bubble.)
func Example_testingWithSynctest() {
	test := func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			nw := memory.NewNetwork() // create it inside the bubble
			defer nw.Close()
			opts := []cluster.Option{cluster.WithTransport(nw), cluster.WithNetworkTimeout(time.Minute)}
			a, _ := cluster.New("a:1", opts...)
			defer a.Close()
			b, _ := cluster.New("b:1", opts...)
			defer b.Close()
			a.Add("b:1")

			nw.BlackHole("b:1")                   // b goes silent, without an error
			time.Sleep(time.Minute + time.Second) // virtual: returns at once
			synctest.Wait()
			if len(a.Remotes()) != 0 {
				t.Error("a silent peer was not removed after the network timeout")
			}
		})
	}
	_ = test
}

// Tell a remote that left on purpose from one that was lost, and hear
// metadata changes.
func ExampleNode_OnEvent() {
	nw := memory.NewNetwork()
	defer nw.Close()
	a, _ := cluster.New("a:1", cluster.WithTransport(nw))
	defer a.Close()
	events := make(chan cluster.Event, 8)
	a.OnEvent(func(e cluster.Event) { events <- e })

	b, _ := cluster.New("b:1", cluster.WithTransport(nw))
	if err := a.Add("b:1"); err != nil {
		log.Fatal(err)
	}
	b.SetMeta([]byte("zone=b"))
	b.Close() // a goodbye: b left on purpose
	for range 3 {
		switch e := <-events; e.Kind {
		case cluster.EventRemoved:
			fmt.Println(e.Remote, e.Reason) // ReasonLost would mean a crash, reset or silence
		case cluster.EventMetaChanged:
			fmt.Println(e.Remote, "meta", string(e.Remote.Meta()))
		default:
			fmt.Println(e.Remote, e.Kind)
		}
	}
	// Output:
	// b:1 added
	// b:1 meta zone=b
	// b:1 left
}

// Export a node's counters, e.g. to a metrics system.
func ExampleNode_Stats() {
	nw := memory.NewNetwork()
	defer nw.Close()
	a, _ := cluster.New("a:1", cluster.WithTransport(nw))
	defer a.Close()
	b, _ := cluster.New("b:1", cluster.WithTransport(nw))
	defer b.Close()
	if err := a.Add("b:1"); err != nil {
		log.Fatal(err)
	}
	a.Broadcast([]byte("hello"))
	<-b.Inbox
	a.Add("nobody:1") // fails: counted as a dial failure
	st := a.Stats()
	for _, r := range st.Remotes {
		fmt.Println(r.Addr, r.State, r.MessagesSent, "sent")
	}
	fmt.Println(st.DialFailures, "dial failure:", st.RecentFailures[0].Addr)
	// Output:
	// b:1 up 1 sent
	// 1 dial failure: nobody:1
}

// Change this node's metadata at run time; remotes see it without a
// reconnect.
func ExampleNode_SetMeta() {
	nw := memory.NewNetwork()
	defer nw.Close()
	a, _ := cluster.New("a:1", cluster.WithTransport(nw), cluster.WithMeta([]byte("role=replica")))
	defer a.Close()
	b, _ := cluster.New("b:1", cluster.WithTransport(nw))
	defer b.Close()
	changed := make(chan cluster.Remote, 1)
	b.OnEvent(func(e cluster.Event) {
		if e.Kind == cluster.EventMetaChanged {
			changed <- e.Remote
		}
	})
	if err := a.Add("b:1"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b.Remotes()[0].Meta()))
	a.SetMeta([]byte("role=leader"))
	fmt.Println(string((<-changed).Meta()))
	// Output:
	// role=replica
	// role=leader
}

// Join a cluster by a DNS name, and keep rejoining it: here a Kubernetes
// headless Service, whose A records are the ready pods.
func ExampleNode_Join() {
	n, err := cluster.New("0.0.0.0:7946",
		cluster.WithSeeds("dns+peers.default.svc.cluster.local:7946"), // rejoined every 30 s while short of it
	)
	if err != nil {
		log.Print(err) // e.g. the port is taken, or no address to advertise
		return
	}
	defer n.Close()
	// Or once, by hand: host:port, dns+host:port or dnssrv+_svc._proto.name.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if k, err := n.Join(ctx, "dnssrv+_gossip._tcp.peers.default.svc.cluster.local"); err != nil {
		log.Print(err)
	} else {
		log.Printf("joined %d seeds", k)
	}
}

// Rotate the cluster's secret without downtime: each step on every node
// before the next. Links stay up throughout.
func ExampleNode_SetSecrets() {
	oldSecret := []byte("the old secret, 16 bytes or more")
	newSecret := []byte("the new secret, 16 bytes or more")
	nw := memory.NewNetwork()
	defer nw.Close()
	a, _ := cluster.New("a:1", cluster.WithTransport(nw), cluster.WithSecret(oldSecret))
	defer a.Close()
	b, _ := cluster.New("b:1", cluster.WithTransport(nw), cluster.WithSecret(oldSecret))
	defer b.Close()
	a.Add("b:1")

	nodes := []*cluster.Node{a, b}
	for _, n := range nodes {
		n.SetSecrets(oldSecret, newSecret) // 1: accept the new
	}
	for _, n := range nodes {
		n.SetSecrets(newSecret, oldSecret) // 2: prove with the new
	}
	for _, n := range nodes {
		n.SetSecrets(newSecret) // 3: drop the old
	}
	c, _ := cluster.New("c:1", cluster.WithTransport(nw), cluster.WithSecret(oldSecret))
	defer c.Close()
	fmt.Println(len(a.Remotes()), errors.Is(c.Add("a:1"), cluster.ErrUnauthorized))
	// Output: 1 true
}
