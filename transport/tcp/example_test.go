package tcp_test

import (
	"log"
	"time"

	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/transport/tcp"
)

// The default transport, tuned; a node uses it with cluster.WithTransport.
// Add tcp.WithTLS(conf) for TLS: one config serves both sides.
func ExampleNew() {
	tr, err := tcp.New(tcp.WithDialTimeout(3*time.Second), tcp.WithKeepAlive(15*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	n, err := cluster.New("127.0.0.1:0", cluster.WithTransport(tr))
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	// Output:
}
