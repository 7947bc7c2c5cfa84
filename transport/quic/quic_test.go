package quic_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	quicgo "github.com/quic-go/quic-go"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peerkit/peerkit/internal/selfsigned"
	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/quic"
	"github.com/peerkit/peerkit/transport/transporttest"
)

func TestMain(m *testing.M) {
	// Containers rarely allow quic-go's preferred UDP buffer sizes.
	os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	goleak.VerifyTestMain(m)
}

func newTransport(t testing.TB, conf *tls.Config, opts ...quic.Option) *quic.Transport {
	t.Helper()
	if conf == nil {
		var err error
		if conf, err = quic.InsecureLocalTLS(); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := quic.New(conf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func TestConformance(t *testing.T) {
	t.Run("Insecure", func(t *testing.T) {
		transporttest.Run(t, func(t testing.TB) (transport.Transport, string) {
			return newTransport(t, nil), "127.0.0.1:0"
		})
	})
	t.Run("Verified", func(t *testing.T) {
		conf, err := selfsigned.VerifiedConfig()
		if err != nil {
			t.Fatal(err)
		}
		transporttest.Run(t, func(t testing.TB) (transport.Transport, string) {
			return newTransport(t, conf), "127.0.0.1:0"
		})
	})
}

func TestInvalidOptions(t *testing.T) {
	conf, _ := quic.InsecureLocalTLS()
	if _, err := quic.New(nil); err == nil {
		t.Error("New(nil) succeeded; want an error")
	}
	old := conf.Clone()
	old.MaxVersion = tls.VersionTLS12
	if _, err := quic.New(old); err == nil {
		t.Error("New with MaxVersion TLS 1.2 succeeded")
	}
	for name, opt := range map[string]quic.Option{
		"handshake": quic.WithHandshakeTimeout(0),
		"idle":      quic.WithIdleTimeout(-1),
		"streams":   quic.WithMaxStreams(0),
		"nil":       nil,
		"logger":    quic.WithLogger(nil),
		"idle conn": quic.WithIdleConnTimeout(-time.Second),
	} {
		if _, err := quic.New(conf, opt); err == nil {
			t.Errorf("%s: New succeeded; want an error", name)
		}
	}
}

func TestConnectionShared(t *testing.T) {
	srv := newTransport(t, nil)
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	transporttest.EchoServer(t, ln)
	tr := newTransport(t, nil)
	const n = 20
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	for i := range n {
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
	if got := tr.Connections(); got != 1 {
		t.Fatalf("%d connections after %d concurrent dials; want 1", got, n)
	}
	first := keyingMaterial(t, conns[0])
	for _, c := range conns {
		if !bytes.Equal(keyingMaterial(t, c), first) {
			t.Error("stream on another connection")
		}
		transporttest.RoundTrip(t, c)
		c.Close()
	}
}

func TestDeadConnectionReplaced(t *testing.T) {
	srv := newTransport(t, nil)
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	transporttest.EchoServer(t, ln)
	tr := newTransport(t, nil)
	c, err := tr.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	transporttest.RoundTrip(t, c)
	ln.Close() // closes the server side of the connection, telling the client
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("stream survived its connection")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the client was not told that the listener closed: %v", err)
	}
	ln2, err := srv.Listen(addr)
	if err != nil {
		t.Skipf("cannot relisten on %s: %v", addr, err)
	}
	transporttest.EchoServer(t, ln2)
	c2, err := tr.Dial(context.Background(), addr)
	if err != nil {
		t.Fatalf("Dial after the connection died: %v", err)
	}
	transporttest.RoundTrip(t, c2)
	if bytes.Equal(keyingMaterial(t, c2), keyingMaterial(t, c)) {
		t.Error("new stream is on the dead connection")
	}
	c2.Close()
}

func TestRefusedFast(t *testing.T) {
	tr := newTransport(t, nil)
	addr := transporttest.ClosedAddr(t, tr, "127.0.0.1:0")
	start := time.Now()
	_, err := tr.Dial(context.Background(), addr)
	d := time.Since(start)
	if !errors.Is(err, transport.ErrRefused) {
		t.Fatalf("Dial error %v: want ErrRefused", err)
	}
	// Fast means the kernel's ICMP port-unreachable answered, not the
	// handshake timeout: tell them by the error, not by the clock.
	var hto *quicgo.HandshakeTimeoutError
	if errors.As(err, &hto) {
		t.Errorf("refused only by the handshake timeout (%v): the ICMP refusal was not seen", err)
	}
	t.Logf("refused after %v: %v", d, err)
	if n := tr.Connections(); n != 0 {
		t.Errorf("%d connections kept after a failed dial", n)
	}
}

func TestTLSState(t *testing.T) {
	tr := newTransport(t, nil)
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
		st := tc.ConnectionState()
		if !st.HandshakeComplete || st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != quic.NextProto {
			t.Errorf("state: complete=%v version=%x alpn=%q", st.HandshakeComplete, st.Version, st.NegotiatedProtocol)
		}
	}
}

func TestClosedTransport(t *testing.T) {
	tr := newTransport(t, nil)
	ln, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Transport.Close: %v", err)
	}
	if _, err := tr.Dial(context.Background(), ln.Addr().String()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Dial after Close: %v", err)
	}
	if _, err := tr.Listen("127.0.0.1:0"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Listen after Close: %v", err)
	}
}

// keyingMaterial tells the connection under a conn: it differs for every
// TLS session.
func keyingMaterial(t *testing.T, c net.Conn) []byte {
	t.Helper()
	st := c.(transport.TLSConn).ConnectionState()
	km, err := st.ExportKeyingMaterial("peerkit test", nil, 16)
	if err != nil {
		t.Fatal(err)
	}
	return km
}
