package cluster_test

import (
	"fmt"
	"log"

	"github.com/peerkit/peerkit/cluster"
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
