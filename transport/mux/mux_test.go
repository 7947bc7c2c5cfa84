package mux_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/goleak"

	"github.com/peerkit/peerkit/internal/selfsigned"
	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/mux"
	"github.com/peerkit/peerkit/transport/transporttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTransport(t testing.TB, opts ...mux.Option) *mux.Transport {
	t.Helper()
	tr, err := mux.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func factory(opts ...mux.Option) transporttest.Factory {
	return func(t testing.TB) (transport.Transport, string) {
		return newTransport(t, opts...), "127.0.0.1:0"
	}
}

func TestConformance(t *testing.T) {
	t.Run("Plain", func(t *testing.T) { transporttest.Run(t, factory()) })
	t.Run("TLS", func(t *testing.T) {
		conf, err := selfsigned.VerifiedConfig()
		if err != nil {
			t.Fatal(err)
		}
		transporttest.Run(t, factory(mux.WithTLS(conf)))
	})
}

func TestInvalidOptions(t *testing.T) {
	bad := yamux.DefaultConfig()
	bad.AcceptBacklog = 0
	for name, opt := range map[string]mux.Option{
		"nil TLS":      mux.WithTLS(nil),
		"nil config":   mux.WithConfig(nil),
		"bad config":   mux.WithConfig(bad),
		"nil option":   nil,
		"bad tcp opts": mux.WithTCP(nil),
		"nil logger":   mux.WithLogger(nil),
		"zero idle":    mux.WithIdleConnTimeout(0),
	} {
		if _, err := mux.New(opt); err == nil {
			t.Errorf("%s: New succeeded; want an error", name)
		}
	}
}

func TestSessionShared(t *testing.T) {
	srv := newTransport(t)
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	transporttest.EchoServer(t, ln)
	tr := newTransport(t)
	const n = 20
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	for i := range n { // concurrent first dials
		wg.Go(func() {
			c, err := tr.Dial(context.Background(), ln.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if got := tr.Sessions(); got != 1 {
		t.Fatalf("%d sessions after %d concurrent dials; want 1", got, n)
	}
	local := conns[0].LocalAddr().String()
	for _, c := range conns {
		if c.LocalAddr().String() != local {
			t.Errorf("stream on another TCP conn: %v vs %v", c.LocalAddr(), local)
		}
		transporttest.RoundTrip(t, c)
		c.Close()
	}
}

func TestDeadSessionReplaced(t *testing.T) {
	srv := newTransport(t)
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	transporttest.EchoServer(t, ln)
	tr := newTransport(t)
	c, err := tr.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	transporttest.RoundTrip(t, c)
	// Kill every server-side session: close the listener, start a new one
	// on the same port.
	ln.Close()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("stream survived its session")
	}
	ln2, err := srv.Listen(addr)
	if err != nil {
		t.Skipf("cannot relisten on %s: %v", addr, err)
	}
	transporttest.EchoServer(t, ln2)
	c2, err := tr.Dial(context.Background(), addr)
	if err != nil {
		t.Fatalf("Dial after the session died: %v", err)
	}
	transporttest.RoundTrip(t, c2)
	if c2.LocalAddr().String() == c.LocalAddr().String() {
		t.Error("new stream reuses the dead session's conn")
	}
	c2.Close()
}

func TestRefused(t *testing.T) {
	tr := newTransport(t)
	addr := transporttest.ClosedAddr(t, tr, "127.0.0.1:0")
	_, err := tr.Dial(context.Background(), addr)
	if !errors.Is(err, transport.ErrRefused) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial error %v: want ErrRefused and ECONNREFUSED", err)
	}
	if n := tr.Sessions(); n != 0 {
		t.Errorf("%d sessions kept after a failed dial", n)
	}
}

func TestClosedTransport(t *testing.T) {
	tr := newTransport(t)
	ln, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	transporttest.EchoServer(t, ln)
	c, err := tr.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tr.Close()
	if _, err := c.Write([]byte("x")); err == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("stream still works after Transport.Close")
		}
	}
	if _, err := tr.Dial(context.Background(), ln.Addr().String()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Dial after Close: %v; want net.ErrClosed", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Transport.Close: %v; want net.ErrClosed", err)
	}
	if _, err := tr.Listen("127.0.0.1:0"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Listen after Close: %v; want net.ErrClosed", err)
	}
}

func TestTLSState(t *testing.T) {
	conf, err := selfsigned.VerifiedConfig()
	if err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, mux.WithTLS(conf))
	ln, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, s := transporttest.Connect(t, tr, ln)
	for _, conn := range []net.Conn{c, s} {
		tc, ok := conn.(transport.TLSConn)
		if !ok {
			t.Fatalf("%T does not implement transport.TLSConn", conn)
		}
		if st := tc.ConnectionState(); !st.HandshakeComplete {
			t.Error("handshake not complete")
		}
	}
}
