package transporttest

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/peerkit/peerkit/transport"
)

// EchoServer accepts conns on ln and echoes each until EOF, for a
// transport's own tests. At cleanup it closes ln and waits for every
// goroutine it started.
func EchoServer(t testing.TB, ln net.Listener) {
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { ln.Close() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
}

// RoundTrip writes two bytes on c and reads them back from an EchoServer,
// failing t if either fails.
func RoundTrip(t testing.TB, c net.Conn) {
	t.Helper()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
}

// Connect dials ln through tr and returns both ends of one stream, once a
// byte from the dialer has crossed it, so that a TLS handshake is complete
// on both sides. Both ends are closed at cleanup.
func Connect(t testing.TB, tr transport.Transport, ln net.Listener) (dialed, accepted net.Conn) {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, err = io.ReadFull(c, make([]byte, 1))
		}
		ch <- result{c, err}
	}()
	c, err := tr.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.c != nil {
		t.Cleanup(func() { r.c.Close() })
	}
	if r.err != nil {
		t.Fatalf("accepting side: %v", r.err)
	}
	return c, r.c
}

// ClosedAddr returns an address of tr's kind where nothing listens any
// more: it listens on listenAddr and closes the listener at once.
func ClosedAddr(t testing.TB, tr transport.Transport, listenAddr string) string {
	t.Helper()
	ln, err := tr.Listen(listenAddr)
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
