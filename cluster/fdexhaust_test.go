package cluster

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/peerkit/peerkit/internal/fdtest"
	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/mux"
	"github.com/peerkit/peerkit/transport/quic"
	"github.com/peerkit/peerkit/transport/tcp"
)

// After a moment of file-descriptor exhaustion a node still accepts
// peers, on every transport: a connection that arrives while the process
// has no descriptor left fails at accept (EMFILE), the failure is logged
// and retried, and once descriptors are free a new node joins. The tcp+TLS,
// mux and mux+TLS listeners used to close for good at the first EMFILE, so
// that every later Add got "connection refused".
//
// These tests lower the process's descriptor limit: they must not run in
// parallel with others (no t.Parallel).
func TestNodeAcceptsPeersAfterDescriptorExhaustion(t *testing.T) {
	cases := []struct {
		name string
		make func(t *testing.T, log *slog.Logger) transport.Transport
		// stream: connections arrive over TCP, and each accepted one
		// needs a descriptor.
		stream bool
	}{
		{"tcp", func(t *testing.T, log *slog.Logger) transport.Transport {
			return mustTransport(t)(tcp.New(tcp.WithLogger(log)))
		}, true},
		{"tcp+tls", func(t *testing.T, log *slog.Logger) transport.Transport {
			return mustTransport(t)(tcp.New(tcp.WithTLS(tlsConfig(t)), tcp.WithLogger(log)))
		}, true},
		{"mux", func(t *testing.T, log *slog.Logger) transport.Transport {
			return mustTransport(t)(mux.New(mux.WithLogger(log)))
		}, true},
		{"mux+tls", func(t *testing.T, log *slog.Logger) transport.Transport {
			return mustTransport(t)(mux.New(mux.WithTLS(tlsConfig(t)), mux.WithLogger(log)))
		}, true},
		{"quic", func(t *testing.T, log *slog.Logger) transport.Transport {
			return mustTransport(t)(quic.New(tlsConfig(t), quic.WithLogger(log)))
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := fdtest.NewLog()
			a, err := New("127.0.0.1:0", testOpts(WithTransport(tc.make(t, log.Logger())), WithLogger(log.Logger()))...)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()

			ex := fdtest.Exhaust(t)
			// With no descriptor free, the node cannot dial either; its
			// Add fails with an error rather than hanging or panicking.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := a.AddContext(ctx, "127.0.0.1:1"); err == nil {
				t.Error("Add with no descriptor free succeeded")
			}
			if tc.stream {
				// One descriptor for a raw client: the listener's accept
				// of it has none left and fails with EMFILE.
				ex.Free(1)
				c, err := net.Dial("tcp", a.Addr().String())
				if err != nil {
					// A listener that closed at the EMFILE resets it;
					// the Add below tells.
					t.Logf("raw dial with one descriptor free: %v", err)
				} else {
					defer c.Close()
					waitLogged(t, log, fdtest.IsEMFILE)
				}
			}
			ex.FreeAll()

			b, err := New("127.0.0.1:0", testOpts(WithTransport(tc.make(t, slog.New(slog.DiscardHandler))))...)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := b.AddContext(ctx, a.AdvertiseAddr()); err != nil {
				t.Fatalf("a new node's Add after the descriptors were freed: %v", err)
			}
			eventually(t, 5*time.Second, func() bool { return len(a.Remotes()) == 1 && len(b.Remotes()) == 1 },
				func() string { return meshReport([]*Node{a, b}) })
			traffic(t, a, b)
		})
	}
}

// mustTransport fails t on a constructor's error and closes the transport
// at cleanup.
func mustTransport(t *testing.T) func(transport.Transport, error) transport.Transport {
	return func(tr transport.Transport, err error) transport.Transport {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return closeWith(t, tr)
	}
}

// waitLogged waits up to 10 s for log to receive an error that match
// accepts.
func waitLogged(t *testing.T, log *fdtest.Log, match func(error) bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-log.Errors():
			if match(err) {
				t.Logf("logged: %v", err)
				return
			}
		case <-timeout:
			t.Fatal("no matching error was logged within 10s")
		}
	}
}
