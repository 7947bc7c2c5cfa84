package mux_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/peerkit/peerkit/transport/mux"
	"github.com/peerkit/peerkit/transport/transporttest"
)

const idleConn = 300 * time.Millisecond

// yamuxServer is a plain TCP listener with a yamux server session on each
// conn, which echoes every stream: the test sees each session, so it can
// tell when the dialler closed the TCP conn under it.
func yamuxServer(t *testing.T) (addr string, sessions <-chan *yamux.Session) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *yamux.Session, 16)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	var mu sync.Mutex
	var open []*yamux.Session
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, s := range open {
			s.Close()
		}
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conf := yamux.DefaultConfig()
			conf.LogOutput = io.Discard
			sess, err := yamux.Server(c, conf)
			if err != nil {
				t.Error(err)
				c.Close()
				return
			}
			mu.Lock()
			open = append(open, sess)
			mu.Unlock()
			ch <- sess
			wg.Go(func() {
				for {
					st, err := sess.AcceptStream()
					if err != nil {
						return
					}
					wg.Go(func() {
						defer st.Close()
						io.Copy(st, st)
					})
				}
			})
		}
	})
	return ln.Addr().String(), ch
}

// TestIdleSessionClosed: once the only stream is closed, the session and
// its TCP conn are closed after the idle timeout, while both ends live.
func TestIdleSessionClosed(t *testing.T) {
	addr, sessions := yamuxServer(t)
	tr := newTransport(t, mux.WithIdleConnTimeout(idleConn))
	c, err := tr.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	transporttest.RoundTrip(t, c)
	srv := <-sessions
	c.Close()
	closed := time.Now()
	select {
	case <-srv.CloseChan(): // the server read EOF: the TCP conn is closed
	case <-time.After(10 * time.Second):
		t.Fatalf("session still open 10s after its only stream closed (idle timeout %v); Sessions() = %d", idleConn, tr.Sessions())
	}
	if d := time.Since(closed); d < idleConn {
		t.Errorf("session closed %v after its last stream; want at least the idle timeout %v", d, idleConn)
	}
	if n := tr.Sessions(); n != 0 {
		t.Errorf("Sessions() = %d after the idle close; want 0", n)
	}
	// A later Dial makes a new session.
	c2, err := tr.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	transporttest.RoundTrip(t, c2)
	<-sessions
}

// TestIdleSessionReused: a stream opened within the idle timeout reuses the
// session and cancels its close.
func TestIdleSessionReused(t *testing.T) {
	addr, sessions := yamuxServer(t)
	tr := newTransport(t, mux.WithIdleConnTimeout(idleConn))
	c, err := tr.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := <-sessions
	c.Close()
	c2, err := tr.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if c2.LocalAddr().String() != c.LocalAddr().String() || tr.Sessions() != 1 {
		t.Fatalf("a Dial within the idle timeout made a new session (%v, was %v; %d sessions)", c2.LocalAddr(), c.LocalAddr(), tr.Sessions())
	}
	select {
	case <-srv.CloseChan():
		t.Fatal("session closed while a stream was open on it")
	case <-time.After(3 * idleConn):
	}
	transporttest.RoundTrip(t, c2)
	c2.Close()
	select {
	case <-srv.CloseChan():
	case <-time.After(10 * time.Second):
		t.Fatal("session still open 10s after its last stream closed")
	}
}
