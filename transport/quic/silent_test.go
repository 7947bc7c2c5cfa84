package quic_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/quic"
)

// TestSilentPeerRefused: where nothing answers at all (ICMP filtered, or a
// socket that drops everything), a Dial fails after the handshake timeout
// with an error matching transport.ErrRefused.
func TestSilentPeerRefused(t *testing.T) {
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close() // it never reads: datagrams vanish, no ICMP is sent
	const timeout = 200 * time.Millisecond
	tr := newTransport(t, nil, quic.WithHandshakeTimeout(timeout))
	start := time.Now()
	_, err = tr.Dial(context.Background(), uc.LocalAddr().String())
	d := time.Since(start)
	if !errors.Is(err, transport.ErrRefused) {
		t.Errorf("Dial to a silent peer: %v (%T); want ErrRefused", err, err)
	}
	if d < timeout || d > 10*timeout {
		t.Errorf("Dial to a silent peer failed after %v; want about the handshake timeout %v", d, timeout)
	}
	if n := tr.Connections(); n != 0 {
		t.Errorf("%d connections kept after a failed dial", n)
	}
}
