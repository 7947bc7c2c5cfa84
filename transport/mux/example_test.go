package mux_test

import (
	"log"
	"time"

	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/transport/mux"
)

// yamux over TCP: one TCP connection per remote address, closed after a
// minute without streams.
func ExampleNew() {
	tr, err := mux.New(mux.WithIdleConnTimeout(time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close() // a transport you create is yours to close
	n, err := cluster.New("127.0.0.1:0", cluster.WithTransport(tr))
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	// Output:
}
