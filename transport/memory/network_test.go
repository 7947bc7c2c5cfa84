package memory_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/memory"
)

func t0ctx() context.Context { return context.Background() }

func TestListen(t *testing.T) {
	nw := memory.NewNetwork()
	defer nw.Close()
	l1 := listen(t, nw, "n:0")
	l2 := listen(t, nw, "n:0")
	if l1.Addr().String() == l2.Addr().String() {
		t.Fatalf("port 0 gave the same address twice: %v", l1.Addr())
	}
	if l1.Addr().Network() != "memory" {
		t.Fatalf("Network() = %q", l1.Addr().Network())
	}
	if _, err := nw.Listen(l1.Addr().String()); !errors.Is(err, memory.ErrAddrInUse) {
		t.Fatalf("Listen on used address: %v", err)
	}
	if _, err := nw.Listen("no-port"); err == nil {
		t.Fatal("Listen on a bad address succeeded")
	}
	l1.Close()
	l3 := listen(t, nw, l1.Addr().String()) // freed by Close
	_ = l3
}

func TestDialRefused(t *testing.T) {
	nw := memory.NewNetwork()
	defer nw.Close()
	_, err := nw.Dial(context.Background(), "nobody:1")
	if !errors.Is(err, transport.ErrRefused) {
		t.Fatalf("Dial to nothing: %v, want ErrRefused", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("error %T is not *net.OpError", err)
	}
}

func TestAcceptUnblockedByClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		l, _ := nw.Listen("b:1")
		errc := make(chan error, 1)
		go func() {
			_, err := l.Accept()
			errc <- err
		}()
		synctest.Wait()
		l.Close()
		l.Close()
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	})
}

func TestDialContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithBacklog(1))
		defer nw.Close()
		l := listen(t, nw, "b:1")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := nw.Dial(ctx, "b:1"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Dial with canceled ctx: %v", err)
		}
		// Nobody accepts: the first dial fills the backlog, the second waits.
		c1, err := nw.Dial(context.Background(), "b:1")
		if err != nil {
			t.Fatal(err)
		}
		defer c1.Close()
		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if _, err := nw.Dial(ctx, "b:1"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Dial into a full backlog: %v", err)
		}
		if time.Since(start) != time.Second {
			t.Fatalf("dial gave up after %v", time.Since(start))
		}
		_ = l
	})
}

func TestNetworkClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		l, _ := nw.Listen("b:1")
		c, s := connect(t, nw, l, "a:1")
		readErr := make(chan error, 1)
		go func() {
			_, err := s.Read(make([]byte, 1))
			readErr <- err
		}()
		acceptErr := make(chan error, 1)
		go func() {
			_, err := l.Accept()
			acceptErr <- err
		}()
		synctest.Wait()
		nw.Close()
		nw.Close()
		if err := <-readErr; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after Network.Close: %v", err)
		}
		if err := <-acceptErr; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Network.Close: %v", err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Network.Close: %v", err)
		}
		if _, err := nw.Listen("c:1"); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Listen after Network.Close: %v", err)
		}
		if _, err := nw.Dial(context.Background(), "b:1"); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Dial after Network.Close: %v", err)
		}
	})
}
