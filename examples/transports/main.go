// Command transports starts a small cluster over the transport named by a
// flag and prints what it did: the same cluster code over TCP, QUIC, yamux
// or the in-memory network, switched by one option.
//
//	go run ./examples/transports -transport quic
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/memory"
	"github.com/peerkit/peerkit/transport/mux"
	"github.com/peerkit/peerkit/transport/quic"
	"github.com/peerkit/peerkit/transport/tcp"
)

func main() {
	name := flag.String("transport", "tcp", "tcp, tcp+tls, quic, mux, mux+tls or memory")
	nodes := flag.Int("nodes", 4, "cluster size")
	flag.Parse()
	log.SetFlags(0)
	os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	if err := run(*name, *nodes); err != nil {
		log.Fatalf("transports: %v", err)
	}
}

// newTransport builds one node's transport. Every node gets its own, as
// separate processes would; the memory network is shared by definition.
func newTransport(name string, shared *memory.Network) (transport.Transport, string, error) {
	switch name {
	case "tcp":
		tr, err := tcp.New()
		return tr, "127.0.0.1:0", err
	case "tcp+tls", "quic", "mux+tls":
		// A self-signed certificate and no verification: for a local demo
		// only. In production pass a *tls.Config with real certificates.
		conf, err := quic.InsecureLocalTLS()
		if err != nil {
			return nil, "", err
		}
		switch name {
		case "tcp+tls":
			tr, err := tcp.New(tcp.WithTLS(conf))
			return tr, "127.0.0.1:0", err
		case "quic":
			tr, err := quic.New(conf)
			return tr, "127.0.0.1:0", err
		default:
			tr, err := mux.New(mux.WithTLS(conf))
			return tr, "127.0.0.1:0", err
		}
	case "mux":
		tr, err := mux.New()
		return tr, "127.0.0.1:0", err
	case "memory":
		return shared, "node:0", nil
	}
	return nil, "", fmt.Errorf("unknown transport %q", name)
}

func run(name string, size int) error {
	shared := memory.NewNetwork()
	defer shared.Close()
	var ns []*cluster.Node
	defer func() {
		for _, n := range ns {
			n.Close()
		}
	}()
	for range size {
		tr, addr, err := newTransport(name, shared)
		if err != nil {
			return err
		}
		if c, ok := tr.(io.Closer); ok && tr != transport.Transport(shared) {
			defer c.Close() // after the nodes (deferred later, run earlier)
		}
		n, err := cluster.New(addr, cluster.WithTransport(tr))
		if err != nil {
			return err
		}
		ns = append(ns, n)
	}
	fmt.Printf("%d nodes over %s: %v ... %v\n", size, name, ns[0].AdvertiseAddr(), ns[size-1].AdvertiseAddr())

	start := time.Now()
	for i := 1; i < size; i++ {
		if err := ns[i].Add(ns[i-1].AdvertiseAddr()); err != nil {
			return err
		}
	}
	for !mesh(ns) {
		if time.Since(start) > 10*time.Second {
			return fmt.Errorf("no full mesh after 10s")
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("chain of Add converged to a full mesh in %v\n", time.Since(start).Round(time.Microsecond))

	// Round trips between the first and the last node.
	a, b := ns[0], ns[size-1]
	var toB, toA cluster.Remote
	for _, r := range a.Remotes() {
		if r.Addr() == b.AdvertiseAddr() {
			toB = r
		}
	}
	for _, r := range b.Remotes() {
		if r.Addr() == a.AdvertiseAddr() {
			toA = r
		}
	}
	const rounds = 1000
	start = time.Now()
	for range rounds {
		if err := a.Send(toB, []byte("ping")); err != nil {
			return err
		}
		<-b.Inbox
		if err := b.Send(toA, []byte("pong")); err != nil {
			return err
		}
		<-a.Inbox
	}
	fmt.Printf("%d round trips, mean %v\n", rounds, (time.Since(start) / rounds).Round(time.Microsecond))

	// A broadcast of 1,000 messages of 1 KiB, received by every other node.
	payload := make([]byte, 1024)
	start = time.Now()
	const msgs = 1000
	for range msgs {
		if err := a.Broadcast(payload); err != nil {
			return err
		}
	}
	for _, n := range ns[1:] {
		for range msgs {
			<-n.Inbox
		}
	}
	d := time.Since(start)
	fmt.Printf("broadcast %d x 1 KiB to %d nodes in %v (%.1f MB/s delivered)\n", msgs, size-1, d.Round(time.Microsecond), float64(msgs*1024*(size-1))/d.Seconds()/1e6)

	start = time.Now()
	ns[0].Close()
	rest := ns[1:]
	for !mesh(rest) {
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("node 1 left gracefully; the others saw it in %v\n", time.Since(start).Round(time.Microsecond))
	return nil
}

func mesh(ns []*cluster.Node) bool {
	for _, n := range ns {
		if len(n.Remotes()) != len(ns)-1 {
			return false
		}
	}
	return true
}
