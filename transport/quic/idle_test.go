package quic_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/peerkit/peerkit/transport/quic"
)

const idleConn = 300 * time.Millisecond

// quicServer is a plain quic-go listener that accepts connections and
// their streams and delivers each connection, so the test can tell when
// the dialler closed it.
func quicServer(t *testing.T) (addr string, conns <-chan *quicgo.Conn) {
	conf, err := quic.InsecureLocalTLS()
	if err != nil {
		t.Fatal(err)
	}
	conf.NextProtos = []string{quic.NextProto}
	ln, err := quicgo.ListenAddr("127.0.0.1:0", conf, &quicgo.Config{KeepAlivePeriod: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *quicgo.Conn, 16)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() {
		cancel()
		ln.Close()
	})
	wg.Go(func() {
		for {
			qc, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			ch <- qc
			wg.Go(func() {
				defer qc.CloseWithError(0, "")
				for {
					st, err := qc.AcceptStream(ctx)
					if err != nil {
						return
					}
					st.CancelWrite(0)
				}
			})
		}
	})
	return ln.Addr().String(), ch
}

// closedByPeer waits until qc is closed, and fails t unless the dialler
// closed it (not an idle timeout or a reset) within 10s.
func closedByPeer(t *testing.T, qc *quicgo.Conn, tr *quic.Transport) {
	t.Helper()
	select {
	case <-qc.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("connection still open 10s after its last stream closed (idle timeout %v); Connections() = %d", idleConn, tr.Connections())
	}
	var app *quicgo.ApplicationError
	if err := context.Cause(qc.Context()); !errors.As(err, &app) || !app.Remote {
		t.Errorf("server connection ended with %v; want a close from the dialler", err)
	}
}

// TestIdleConnectionClosed: once the only stream is closed, the connection
// is closed after the idle timeout, while both ends live.
func TestIdleConnectionClosed(t *testing.T) {
	addr, conns := quicServer(t)
	tr := newTransport(t, nil, quic.WithIdleConnTimeout(idleConn))
	c, err := tr.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := <-conns
	c.Close()
	closed := time.Now()
	closedByPeer(t, srv, tr)
	if d := time.Since(closed); d < idleConn {
		t.Errorf("connection closed %v after its last stream; want at least the idle timeout %v", d, idleConn)
	}
	if n := tr.Connections(); n != 0 {
		t.Errorf("Connections() = %d after the idle close; want 0", n)
	}
	c2, err := tr.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	<-conns
}

// TestIdleConnectionReused: a stream opened within the idle timeout reuses
// the connection and cancels its close.
func TestIdleConnectionReused(t *testing.T) {
	addr, conns := quicServer(t)
	tr := newTransport(t, nil, quic.WithIdleConnTimeout(idleConn))
	c, err := tr.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := <-conns
	c.Close()
	c2, err := tr.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Connections() != 1 {
		t.Fatalf("%d connections after a Dial within the idle timeout; want 1", tr.Connections())
	}
	select {
	case qc := <-conns:
		t.Fatalf("a Dial within the idle timeout made a new connection (from %v)", qc.RemoteAddr())
	case <-srv.Context().Done():
		t.Fatal("connection closed while a stream was open on it")
	case <-time.After(3 * idleConn):
	}
	c2.Close()
	closedByPeer(t, srv, tr)
}
