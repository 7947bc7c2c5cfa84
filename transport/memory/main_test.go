package memory_test

import (
	"context"
	"net"
	"testing"

	"go.uber.org/goleak"

	"github.com/peerkit/peerkit/transport/memory"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// connect listens at to (if not yet listening) and returns both ends of a
// conn dialled from from. from "" dials anonymously.
func connect(t testing.TB, nw *memory.Network, l net.Listener, from string) (client, server net.Conn) {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		ch <- result{c, err}
	}()
	var err error
	if from == "" {
		client, err = nw.Dial(context.Background(), l.Addr().String())
	} else {
		client, err = nw.DialFrom(context.Background(), from, l.Addr().String())
	}
	if err != nil {
		t.Fatalf("dial %s: %v", l.Addr(), err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatalf("accept: %v", r.err)
	}
	t.Cleanup(func() {
		client.Close()
		r.c.Close()
	})
	return client, r.c
}

func listen(t testing.TB, nw *memory.Network, addr string) net.Listener {
	t.Helper()
	l, err := nw.Listen(addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}
