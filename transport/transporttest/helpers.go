package transporttest

import (
	"io"
	"net"
	"sync"
	"testing"
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
