package quic_test

import (
	"context"
	"io"
	"testing"

	"github.com/peerkit/peerkit/internal/fdtest"
	"github.com/peerkit/peerkit/transport/quic"
	"github.com/peerkit/peerkit/transport/transporttest"
)

// TestAcceptSurvivesEMFILE runs the process out of file descriptors. A
// QUIC listener needs none per connection, so a connection that arrives
// meanwhile (from a transport whose socket is open) is accepted; a dial
// that needs a new socket fails with EMFILE and leaves nothing behind; once
// descriptors are back, the same transport dials and the round trip works.
// Not parallel: it changes a limit of the process.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	log := fdtest.NewLog()
	srv := newTransport(t, nil, quic.WithLogger(log.Logger()))
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// warm has its socket open before descriptors run out: it dials
	// another listener first.
	decoy, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	transporttest.EchoServer(t, decoy)
	warm := newTransport(t, nil)
	c, err := warm.Dial(context.Background(), decoy.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	transporttest.RoundTrip(t, c)
	c.Close()

	fresh := newTransport(t, nil)
	fdtest.AcceptSurvives(t, fdtest.Scenario{
		Listener: ln,
		Log:      log,
		WhileExhausted: func(t testing.TB) {
			c, err := fresh.Dial(context.Background(), ln.Addr().String())
			if err == nil {
				c.Close()
				t.Fatal("Dial from a transport with no socket succeeded with no descriptor free")
			}
			if !fdtest.IsEMFILE(err) {
				t.Errorf("Dial with no descriptor free: %v; want EMFILE", err)
			}
			if n := fresh.Connections(); n != 0 {
				t.Errorf("%d connections kept after a Dial that could not open a socket", n)
			}
		},
		Arrive: func(ctx context.Context, addr string) (io.Closer, error) {
			return warm.Dial(ctx, addr)
		},
		Dial: fresh.Dial,
	})
}
