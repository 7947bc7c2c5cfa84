package transporttest

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

func runNettest(t *testing.T, mp nettest.MakePipe) { nettest.TestConn(t, mp) }

// isTimeout reports whether err is a net.Error that says Timeout().
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func testDeadlines(e *env) {
	t := e.t
	ln := e.listen()
	c1, c2 := e.mustPair(ln)

	// Read deadline in the future: Read blocks, then times out.
	if err := c1.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	start := time.Now()
	n, err := c1.Read(make([]byte, 1))
	if n != 0 || !isTimeout(err) {
		t.Fatalf("Read past its deadline = %d, %v (%T); want 0 and a net.Error with Timeout()", n, err, err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("Read timed out after %v; deadline was 50ms away", d)
	}
	// Read deadline in the past: immediate timeout.
	c1.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c1.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("Read with a past deadline: %v; want a timeout", err)
	}
	// Cleared: data flows again.
	c1.SetReadDeadline(time.Time{})
	go c2.Write([]byte("ok"))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c1, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("Read after clearing the deadline = %q, %v; want \"ok\"", buf, err)
	}

	// Write deadline: nobody reads c2, so a large Write must block on flow
	// control and then time out.
	if err := c1.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatalf("SetWriteDeadline: %v", err)
	}
	n, err = c1.Write(make([]byte, 32<<20))
	if !isTimeout(err) {
		t.Fatalf("32 MiB Write with an unread peer = %d, %v (%T); want a net.Error with Timeout()", n, err, err)
	}
	c1.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := c1.Write([]byte("x")); !isTimeout(err) {
		t.Fatalf("Write with a past deadline: %v; want a timeout", err)
	}
}

func testCloseOneKeepsOthers(e *env) {
	t := e.t
	ln := e.listen()
	const n = 3
	var clients, servers [n]net.Conn
	for i := range n {
		clients[i], servers[i] = e.mustPair(ln)
	}
	// Close the first conn from the dialling side; its peer sees EOF or an
	// error, never more data.
	if err := clients[0].Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	servers[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := servers[0].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("peer of a closed conn: Read = %v; want EOF or a close error", err)
	}
	// Close one conn from the accepting side too.
	if err := servers[1].Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	clients[1].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := clients[1].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("peer of a closed conn: Read = %v; want EOF or a close error", err)
	}
	// The remaining conn still works both ways.
	exchange(t, clients[2], servers[2], "ping")
	exchange(t, servers[2], clients[2], "pong")
	// And a new Dial to the same remote works.
	c, s := e.mustPair(ln)
	exchange(t, c, s, "again")
	exchange(t, s, c, "again")
}

// exchange writes msg on a and expects it on b.
func exchange(t *testing.T, a, b net.Conn, msg string) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := a.Write([]byte(msg))
		errc <- err
	}()
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer b.SetReadDeadline(time.Time{})
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != msg {
		t.Fatalf("exchange %q: read %q, %v", msg, buf, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("exchange %q: write: %v", msg, err)
	}
}

func testDialContext(e *env) {
	t := e.t
	ln := e.listen()
	addr := ln.Addr().String()
	check := func(when string) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if c, err := e.tr.Dial(ctx, addr); err == nil {
			c.Close()
			t.Errorf("%s: Dial with a cancelled context succeeded", when)
		} else if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Dial with a cancelled context: %v; want an error matching context.Canceled", when, err)
		}
		ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		if c, err := e.tr.Dial(ctx, addr); err == nil {
			c.Close()
			t.Errorf("%s: Dial with an expired context succeeded", when)
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: Dial with an expired context: %v; want an error matching context.DeadlineExceeded", when, err)
		}
	}
	check("fresh transport")
	c1, c2 := e.mustPair(ln) // now a session to addr may exist
	check("with a session")
	exchange(t, c1, c2, "still fine")
}
