package fdtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/peerkit/peerkit/internal/acceptloop"
	"github.com/peerkit/peerkit/transport/transporttest"
)

// Scenario is one listener put through a moment of descriptor exhaustion.
type Scenario struct {
	// Listener is the listener under test. AcceptSurvives serves it with
	// an echo loop that, like any caller's loop, retries every Accept
	// error except net.ErrClosed; it closes the listener at cleanup.
	Listener net.Listener
	// Log receives the records of the transport's logger, if the
	// transport was given Log.Logger().
	Log *Log
	// WhileExhausted, if set, runs while no descriptor at all is free.
	WhileExhausted func(t testing.TB)
	// Arrive makes one connection reach addr while exactly one descriptor
	// is free and returns it; it is closed once descriptors are free
	// again. Nil means a raw TCP dial, whose accept then hits EMFILE.
	Arrive func(ctx context.Context, addr string) (io.Closer, error)
	// Dial opens a conn to addr through the transport under test, once
	// descriptors are free again.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// AcceptSurvives exhausts the process's descriptors, makes a connection
// arrive at s.Listener while they are exhausted, waits until the listener
// has reacted (it logged an error, its Accept returned an error, or it
// accepted a conn), frees every descriptor, and checks that a new Dial and
// a round trip over the listener work.
func AcceptSurvives(t *testing.T, s Scenario) {
	t.Helper()
	addr := s.Listener.Addr().String()
	events := serveEcho(t, s.Listener)
	var logged <-chan error
	if s.Log != nil {
		logged = s.Log.Errors()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ex := Exhaust(t)
	if s.WhileExhausted != nil {
		s.WhileExhausted(t)
	}
	ex.Free(1)
	arrive := s.Arrive
	if arrive == nil {
		arrive = dialTCP
	}
	var seen string
	c, err := arrive(ctx, addr)
	if err != nil {
		// Go on: what the Dial below meets tells the rest.
		seen = fmt.Sprintf("the arriving connection failed: %v", err)
		t.Errorf("while descriptors were exhausted, %s", seen)
	} else {
		defer c.Close()
		select {
		case err := <-logged:
			seen = fmt.Sprintf("the transport logged %v (EMFILE: %v)", err, IsEMFILE(err))
		case ev := <-events:
			seen = ev
		case <-ctx.Done():
			t.Fatal("the listener neither logged, returned an error nor accepted within 10s of a connection arriving while descriptors were exhausted")
		}
		t.Logf("while descriptors were exhausted, %s", seen)
	}
	ex.FreeAll()
	if c != nil {
		c.Close()
	}

	conn, err := s.Dial(ctx, addr)
	if err != nil {
		t.Fatalf("Dial after the descriptors were freed: %v (while they were exhausted, %s)", err, seen)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	transporttest.RoundTrip(t, conn)
}

// dialTCP opens a raw TCP conn to addr.
func dialTCP(ctx context.Context, addr string) (io.Closer, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// serveEcho accepts on ln and echoes every conn until cleanup. It reports
// each Accept error, and the first accepted conn, on the returned channel
// (dropping reports nobody reads).
func serveEcho(t *testing.T, ln net.Listener) <-chan string {
	events := make(chan string, 16)
	report := func(ev string) {
		select {
		case events <- ev:
		default:
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() {
		close(stop)
		ln.Close()
	})
	wg.Go(func() {
		var b acceptloop.Backoff
		accepted := false
		for {
			c, err := ln.Accept()
			if err != nil {
				report(fmt.Sprintf("Accept returned %v (EMFILE: %v)", err, IsEMFILE(err)))
				if acceptloop.Closed(err) || !b.Wait(nil, "", err, stop) {
					return
				}
				continue
			}
			b.Reset()
			if !accepted {
				accepted = true
				report("the listener accepted a conn")
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
	return events
}
