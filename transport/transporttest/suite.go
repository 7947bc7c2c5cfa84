package transporttest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/peerkit/peerkit/transport"
)

// Factory returns a fresh transport and an address to Listen on, such as
// "127.0.0.1:0". If the transport is an io.Closer the factory closes it
// with t.Cleanup.
type Factory func(t testing.TB) (transport.Transport, string)

// Defaults of Options.
const (
	DefaultWatchdog      = 45 * time.Second
	DefaultRefusedWithin = 10 * time.Second
)

// Options declares documented limitations of a transport under test, and
// the suite's bounds. The zero value asks for the full suite with the
// default bounds.
type Options struct {
	// Watchdog bounds how long one subtest may run before the suite
	// reports it as hung and closes everything it opened (zero:
	// DefaultWatchdog).
	Watchdog time.Duration
	// RefusedWithin bounds how long a Dial to a closed listener may take
	// before it fails with transport.ErrRefused (zero:
	// DefaultRefusedWithin).
	RefusedWithin time.Duration

	// FatalWriteTimeouts declares that a Write which times out leaves the
	// conn unable to write again, as with crypto/tls (a record may have
	// been half written). nettest.TestConn reuses conns after write
	// timeouts, so the Conn subtest is skipped; the Deadlines subtest still
	// checks that write deadlines expire with a timeout error.
	FatalWriteTimeouts bool
}

// Run runs the full conformance suite against the transports f makes. See
// the package documentation for the list of subtests.
func Run(t *testing.T, f Factory) {
	t.Helper()
	RunWith(t, f, Options{})
}

// RunWith is Run for a transport with the limitations o declares.
func RunWith(t *testing.T, f Factory, o Options) {
	t.Helper()
	if o.Watchdog <= 0 {
		o.Watchdog = DefaultWatchdog
	}
	if o.RefusedWithin <= 0 {
		o.RefusedWithin = DefaultRefusedWithin
	}
	cases := []struct {
		name string
		fn   func(e *env)
	}{
		{"Conn", testConn},
		{"DialRefused", testDialRefused},
		{"CloseUnblocksAccept", testCloseUnblocksAccept},
		{"ConcurrentDials", testConcurrentDials},
		{"LargeWrite", testLargeWrite},
		{"Deadlines", testDeadlines},
		{"CloseOneKeepsOthers", testCloseOneKeepsOthers},
		{"DialContext", testDialContext},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "Conn" && o.FatalWriteTimeouts {
				t.Skip("transport declares FatalWriteTimeouts; nettest.TestConn needs conns that survive a write timeout")
			}
			e := newEnv(t, f, o)
			defer e.stopWatchdog()
			c.fn(e)
		})
	}
}

// env is the state of one subtest: its transport, and everything it opened,
// so that the watchdog can close it all.
type env struct {
	t       *testing.T
	f       Factory
	o       Options
	tr      transport.Transport
	addr    string
	timer   *time.Timer
	hungEnd chan struct{} // closed when hung has returned
	mu      sync.Mutex
	closers []io.Closer
	closed  bool
}

func newEnv(t *testing.T, f Factory, o Options) *env {
	tr, addr := f(t)
	if tr == nil {
		t.Fatal("transporttest: factory returned a nil transport")
	}
	e := &env{t: t, f: f, o: o, tr: tr, addr: addr, hungEnd: make(chan struct{})}
	if c, ok := tr.(io.Closer); ok {
		e.track(c)
	}
	e.timer = time.AfterFunc(e.o.Watchdog, e.hung)
	t.Cleanup(e.closeAll)
	return e
}

// stopWatchdog stops the timer or, if it fired, waits until hung is done,
// so that hung never reports on a finished test.
func (e *env) stopWatchdog() {
	if !e.timer.Stop() {
		<-e.hungEnd
	}
}

// hung runs on the watchdog's goroutine: report, then close everything so
// that the blocked calls of the test return.
func (e *env) hung() {
	defer close(e.hungEnd)
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	e.t.Errorf("transporttest: %s still running after %v; closing its listeners, conns and transport.\n"+
		"goroutines:\n%s", e.t.Name(), e.o.Watchdog, buf)
	e.closeAll()
}

// track registers c to be closed when the subtest ends or hangs.
func (e *env) track(c io.Closer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		c.Close()
		return
	}
	e.closers = append(e.closers, c)
}

func (e *env) closeAll() {
	e.mu.Lock()
	cs := e.closers
	e.closers, e.closed = nil, true
	e.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i].Close()
	}
}

// listen opens a listener on the factory's address.
func (e *env) listen() net.Listener {
	e.t.Helper()
	ln, err := e.tr.Listen(e.addr)
	if err != nil {
		e.t.Fatalf("Listen(%q): %v", e.addr, err)
	}
	e.track(ln)
	return ln
}

// dial dials ln and returns the conn.
func (e *env) dial(ln net.Listener) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.o.Watchdog)
	defer cancel()
	c, err := e.tr.Dial(ctx, ln.Addr().String())
	if err != nil {
		return nil, err
	}
	e.track(c)
	return c, nil
}

// pair dials ln and accepts the other end; c1 is the dialled side.
func (e *env) pair(ln net.Listener) (c1, c2 net.Conn, err error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			e.track(c)
		}
		ch <- result{c, err}
	}()
	c1, err = e.dial(ln)
	if err != nil {
		ln.Close() // unblock Accept
		<-ch
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	r := <-ch
	if r.err != nil {
		return nil, nil, fmt.Errorf("accept: %w", r.err)
	}
	return c1, r.c, nil
}

// mustPair is pair for the test goroutine.
func (e *env) mustPair(ln net.Listener) (net.Conn, net.Conn) {
	e.t.Helper()
	c1, c2, err := e.pair(ln)
	if err != nil {
		e.t.Fatal(err)
	}
	return c1, c2
}

func testConn(e *env) {
	// nettest.TestConn wants a fresh pair per case; every pair gets its own
	// listener on the subtest's transport.
	runNettest(e.t, func() (net.Conn, net.Conn, func(), error) {
		ln, err := e.tr.Listen(e.addr)
		if err != nil {
			return nil, nil, nil, err
		}
		e.track(ln)
		c1, c2, err := e.pair(ln)
		if err != nil {
			ln.Close()
			return nil, nil, nil, err
		}
		stop := func() {
			c1.Close()
			c2.Close()
			ln.Close()
		}
		return c1, c2, stop, nil
	})
}

func testDialRefused(e *env) {
	ln := e.listen()
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		e.t.Fatalf("listener Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*e.o.RefusedWithin)
	defer cancel()
	start := time.Now()
	c, err := e.tr.Dial(ctx, addr)
	elapsed := time.Since(start)
	if err == nil {
		c.Close()
		e.t.Fatalf("Dial(%q) to a closed listener succeeded", addr)
	}
	if !errors.Is(err, transport.ErrRefused) {
		e.t.Errorf("Dial(%q) error = %v (%T); want one matching transport.ErrRefused", addr, err, err)
	}
	if elapsed > e.o.RefusedWithin {
		e.t.Errorf("Dial(%q) took %v to fail; want at most %v", addr, elapsed, e.o.RefusedWithin)
	}
	e.t.Logf("refused after %v: %v", elapsed, err)
}

func testCloseUnblocksAccept(e *env) {
	ln := e.listen()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	// There is no event for "Accept is blocked"; give it a moment so the
	// Close usually lands while Accept waits (either order must work).
	time.Sleep(50 * time.Millisecond)
	if err := ln.Close(); err != nil {
		e.t.Errorf("listener Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		e.t.Errorf("Accept after Close returned %v; want an error matching net.ErrClosed", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		e.t.Errorf("second Accept after Close returned %v; want an error matching net.ErrClosed", err)
	}
	ln.Close() // a second Close must not panic
}

const concurrentDials = 100

func testConcurrentDials(e *env) {
	ln := e.listen()
	const size = 8 << 10
	// Server: echo every message back on its own conn.
	var srv sync.WaitGroup
	srv.Go(func() {
		var wg sync.WaitGroup
		defer wg.Wait()
		for range concurrentDials {
			c, err := ln.Accept()
			if err != nil {
				e.t.Errorf("Accept: %v", err)
				return
			}
			e.track(c)
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, size)
				if _, err := io.ReadFull(c, buf); err != nil {
					e.t.Errorf("server read: %v", err)
					return
				}
				if _, err := c.Write(buf); err != nil {
					e.t.Errorf("server write: %v", err)
				}
			})
		}
	})
	var wg sync.WaitGroup
	for i := range concurrentDials {
		wg.Go(func() {
			c, err := e.dial(ln)
			if err != nil {
				e.t.Errorf("dial %d: %v", i, err)
				return
			}
			defer c.Close()
			msg := pattern(uint64(i), size)
			if _, err := c.Write(msg); err != nil {
				e.t.Errorf("dial %d: write: %v", i, err)
				return
			}
			got := make([]byte, size)
			if _, err := io.ReadFull(c, got); err != nil {
				e.t.Errorf("dial %d: read: %v", i, err)
				return
			}
			if string(got) != string(msg) {
				e.t.Errorf("dial %d: received another stream's data", i)
			}
		})
	}
	wg.Wait()
	if e.t.Failed() {
		ln.Close() // unblock the server's Accept
	}
	srv.Wait()
}

// pattern returns n pseudo-random bytes determined by seed.
func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func testLargeWrite(e *env) {
	ln := e.listen()
	c1, c2 := e.mustPair(ln)
	data := pattern(16, 16<<20)
	want := sha256.Sum256(data)
	errc := make(chan error, 1)
	go func() {
		_, err := c1.Write(data)
		if err == nil {
			err = c1.Close()
		}
		errc <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, c2)
	if err != nil {
		e.t.Fatalf("reading the large write: %v after %d bytes", err, n)
	}
	if werr := <-errc; werr != nil {
		e.t.Fatalf("16 MiB Write: %v", werr)
	}
	if n != int64(len(data)) {
		e.t.Fatalf("received %d bytes; want %d", n, len(data))
	}
	var got [sha256.Size]byte
	h.Sum(got[:0])
	if got != want {
		e.t.Fatal("16 MiB write arrived corrupted (SHA-256 differs)")
	}
}
