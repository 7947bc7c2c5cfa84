package quic

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/peerkit/peerkit/transport"
)

// BenchmarkDialRefused measures how long a dial to a closed loopback port
// takes to fail, three ways, reported as ms/refusal:
//
//   - Transport: one socket per Transport, with IP_RECVERR and its error
//     queue read (what Dial does);
//   - SocketPerRemote: a connected socket per dial (what Dial did before),
//     where the kernel reports the ICMP port unreachable as ECONNREFUSED;
//   - OneSocketPlain: one unconnected socket handed to quic-go as is,
//     which never hears of the ICMP error and waits out the handshake
//     (DefaultHandshakeTimeout with no answer, per op).
//
// Run with go test -run '^$' -bench DialRefused ./transport/quic: with the
// default -benchtime OneSocketPlain makes one dial (it takes 3 s); a count
// such as -benchtime=50x makes it take 50 times that.
func BenchmarkDialRefused(b *testing.B) {
	conf, err := InsecureLocalTLS()
	if err != nil {
		b.Fatal(err)
	}
	tr, err := New(conf)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	raddr := closedUDPAddr(b)
	addr := raddr.String()
	client := tr.clientConfig("127.0.0.1")

	b.Run("Transport", func(b *testing.B) {
		measure(b, func(ctx context.Context) error {
			_, err := tr.Dial(ctx, addr)
			return err
		})
	})
	b.Run("SocketPerRemote", func(b *testing.B) {
		measure(b, func(ctx context.Context) error {
			uc, err := net.DialUDP("udp", nil, raddr)
			if err != nil {
				return err
			}
			defer uc.Close()
			qtr := &quicgo.Transport{Conn: &connectedConn{uc: uc, raddr: raddr}}
			defer qtr.Close()
			return dialErr(qtr, ctx, raddr, client, tr.conf)
		})
	})
	b.Run("OneSocketPlain", func(b *testing.B) {
		uc, err := net.ListenUDP("udp", nil)
		if err != nil {
			b.Fatal(err)
		}
		defer uc.Close()
		qtr := &quicgo.Transport{Conn: uc}
		defer qtr.Close()
		measure(b, func(ctx context.Context) error {
			return dialErr(qtr, ctx, raddr, client, tr.conf)
		})
	})
}

// measure runs dial b.N times; each must fail as refused (ErrRefused, or
// ECONNREFUSED from quic-go on a connected socket) or, for quic-go on an
// unconnected socket, time out.
func measure(b *testing.B, dial func(context.Context) error) {
	start := time.Now()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*DefaultHandshakeTimeout)
		err := dial(ctx)
		cancel()
		var ne net.Error
		refused := errors.Is(err, transport.ErrRefused) || errors.Is(err, syscall.ECONNREFUSED)
		if !refused && !(errors.As(err, &ne) && ne.Timeout()) {
			b.Fatalf("dial to a closed port: %v; want it refused", err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/refusal")
}

func dialErr(qtr *quicgo.Transport, ctx context.Context, raddr *net.UDPAddr, tc *tls.Config, qc *quicgo.Config) error {
	c, err := qtr.Dial(ctx, raddr, tc, qc)
	if err == nil {
		c.CloseWithError(0, "")
		return errors.New("dial succeeded")
	}
	return err
}

// closedUDPAddr returns a loopback address where no socket listens.
func closedUDPAddr(b *testing.B) *net.UDPAddr {
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	a := uc.LocalAddr().(*net.UDPAddr)
	uc.Close()
	return a
}

// connectedConn is a connected UDP socket as quic-go's PacketConn, as Dial
// used before it shared one socket: its reads fail with ECONNREFUSED once
// the ICMP answer arrives, which ends the quic-go Transport and the dial.
type connectedConn struct {
	uc    *net.UDPConn
	raddr *net.UDPAddr
}

func (c *connectedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := c.uc.Read(b)
	return n, c.raddr, err
}

func (c *connectedConn) WriteTo(b []byte, _ net.Addr) (int, error) { return c.uc.Write(b) }
func (c *connectedConn) Close() error                              { return c.uc.Close() }
func (c *connectedConn) LocalAddr() net.Addr                       { return c.uc.LocalAddr() }
func (c *connectedConn) SetDeadline(t time.Time) error             { return c.uc.SetDeadline(t) }
func (c *connectedConn) SetReadDeadline(t time.Time) error         { return c.uc.SetReadDeadline(t) }
func (c *connectedConn) SetWriteDeadline(t time.Time) error        { return c.uc.SetWriteDeadline(t) }
