package quic_test

import (
	"log"

	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/transport/quic"
)

// QUIC always runs TLS 1.3: pass your own config. InsecureLocalTLS is for
// local experiments only (anyone on the path can impersonate a peer).
func ExampleNew() {
	conf, err := quic.InsecureLocalTLS()
	if err != nil {
		log.Fatal(err)
	}
	tr, err := quic.New(conf)
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	n, err := cluster.New("127.0.0.1:0", cluster.WithTransport(tr))
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	// Output:
}
