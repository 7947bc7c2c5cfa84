package quic_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/quic"
	"github.com/peerkit/peerkit/transport/transporttest"
)

// TestOneSocket: every connection of a transport is dialled from one UDP
// socket, and ICMP errors caused by one peer harm no other: a refused dial
// and a peer that vanished leave the connection to a live peer working.
func TestOneSocket(t *testing.T) {
	srv := newTransport(t, nil)
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	transporttest.EchoServer(t, ln)
	tr := newTransport(t, nil)
	live, err := tr.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	transporttest.RoundTrip(t, live)

	for range 3 {
		addr := transporttest.ClosedAddr(t, srv, "127.0.0.1:0")
		if _, err := tr.Dial(context.Background(), addr); !errors.Is(err, transport.ErrRefused) {
			t.Fatalf("Dial to a closed port: %v; want ErrRefused", err)
		}
	}
	gone := vanishingPeer(t)
	c, err := tr.Dial(context.Background(), gone.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.LocalAddr().String() != live.LocalAddr().String() {
		t.Errorf("connections from two sockets: %v and %v", c.LocalAddr(), live.LocalAddr())
	}
	gone.vanish()
	// The next packet to the vanished peer draws a port unreachable.
	c.Write([]byte("x"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a vanished peer succeeded")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection to a peer whose port closed still open 5s later (QUIC idle timeout %v): %v", quic.DefaultIdleTimeout, err)
	}
	transporttest.RoundTrip(t, live)
	live2, err := tr.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer live2.Close()
	transporttest.RoundTrip(t, live2)
}

// peer is a QUIC listener that can vanish at once: its socket closes with
// no CONNECTION_CLOSE sent, as when its process is killed.
type peer struct {
	addr   string
	vanish func()
}

func vanishingPeer(t *testing.T) peer {
	conf, err := quic.InsecureLocalTLS()
	if err != nil {
		t.Fatal(err)
	}
	conf.NextProtos = []string{quic.NextProto}
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	qtr := &quicgo.Transport{Conn: uc}
	ln, err := qtr.Listen(conf, &quicgo.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := ln.Accept(ctx); err != nil {
				return
			}
		}
	}()
	var once sync.Once
	vanish := func() {
		once.Do(func() {
			cancel()
			uc.Close() // first, so that closing the rest sends nothing
			qtr.Close()
			<-done
		})
	}
	t.Cleanup(vanish)
	return peer{addr: uc.LocalAddr().String(), vanish: vanish}
}
