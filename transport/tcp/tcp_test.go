package tcp_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peerkit/peerkit/internal/selfsigned"
	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/tcp"
	"github.com/peerkit/peerkit/transport/transporttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func factory(opts ...tcp.Option) transporttest.Factory {
	return func(t testing.TB) (transport.Transport, string) {
		tr, err := tcp.New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		return tr, "127.0.0.1:0"
	}
}

func TestConformance(t *testing.T) {
	t.Run("Plain", func(t *testing.T) { transporttest.Run(t, factory()) })
	t.Run("TLS", func(t *testing.T) {
		conf, err := selfsigned.VerifiedConfig()
		if err != nil {
			t.Fatal(err)
		}
		// crypto/tls cannot write again after a write timeout.
		transporttest.RunWith(t, factory(tcp.WithTLS(conf)), transporttest.Options{FatalWriteTimeouts: true})
	})
	t.Run("Tuned", func(t *testing.T) {
		transporttest.Run(t, factory(tcp.WithKeepAlive(-1), tcp.WithNoDelay(false), tcp.WithDialTimeout(5*time.Second)))
	})
}

func TestInvalidOptions(t *testing.T) {
	for name, opt := range map[string]tcp.Option{
		"nil TLS":          tcp.WithTLS(nil),
		"negative timeout": tcp.WithDialTimeout(-time.Second),
		"nil option":       nil,
		"nil logger":       tcp.WithLogger(nil),
	} {
		if _, err := tcp.New(opt); err == nil {
			t.Errorf("%s: New succeeded; want an error", name)
		}
	}
}

func TestRefusedKeepsCause(t *testing.T) {
	tr, _ := tcp.New()
	addr := transporttest.ClosedAddr(t, tr, "127.0.0.1:0")
	_, err := tr.Dial(context.Background(), addr)
	if !errors.Is(err, transport.ErrRefused) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial error %v: want ErrRefused and ECONNREFUSED", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("Dial error %v: want a *net.OpError beneath", err)
	}
}

func TestTLSState(t *testing.T) {
	conf, err := selfsigned.VerifiedConfig()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := tcp.New(tcp.WithTLS(conf))
	if err != nil {
		t.Fatal(err)
	}
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
		if !st.HandshakeComplete || st.Version != tls.VersionTLS13 {
			t.Errorf("state: complete=%v version=%x", st.HandshakeComplete, st.Version)
		}
	}
	// A verifying config that trusts another certificate is rejected.
	other, _ := selfsigned.VerifiedConfig()
	other.Certificates = nil
	tr2, _ := tcp.New(tcp.WithTLS(other))
	if c, err := tr2.Dial(context.Background(), ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("Dial with an untrusting config succeeded")
	}
}
