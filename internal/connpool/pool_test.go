package connpool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport"
)

// fakeSess is a session with no I/O: it dies when told to or when closed.
type fakeSess struct {
	id     int
	dead   atomic.Bool
	closes atomic.Int32
	block  chan struct{} // if set, Close waits for it to be closed
}

func (s *fakeSess) Alive() bool { return !s.dead.Load() && s.closes.Load() == 0 }

func (s *fakeSess) Close() error {
	s.closes.Add(1)
	if s.block != nil {
		<-s.block
	}
	return nil
}

// fakeDialer makes fakeSess values and counts the dials started. With a
// gate, each dial waits until the gate is closed or its context ends; errs
// are returned by the first dials past the gate, in order (nil: success).
type fakeDialer struct {
	gate chan struct{}

	mu    sync.Mutex
	errs  []error
	made  []*fakeSess
	dials int
}

var errBoom = errors.New("boom")

func (d *fakeDialer) dial(ctx context.Context, addr string) (*fakeSess, error) {
	d.mu.Lock()
	d.dials++
	d.mu.Unlock()
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-ctx.Done():
			return nil, fmt.Errorf("dial %s: %w", addr, ctx.Err())
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.errs) > 0 {
		err := d.errs[0]
		d.errs = d.errs[1:]
		if err != nil {
			return nil, err
		}
	}
	s := &fakeSess{id: len(d.made)}
	d.made = append(d.made, s)
	return s, nil
}

func (d *fakeDialer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials
}

const idle = 30 * time.Second

func newPool(d *fakeDialer, idle time.Duration) *Pool[*fakeSess] {
	return New(Config[*fakeSess]{Net: "fake", Dial: d.dial, IdleTimeout: idle})
}

func noop(*fakeSess) error { return nil }

// test runs f in a synctest bubble with a fresh dialer and a pool closed
// at the end. A gate must be made inside the bubble (by f), or its channel
// would not block durably.
func test(t *testing.T, idle time.Duration, f func(t *testing.T, p *Pool[*fakeSess], d *fakeDialer)) {
	synctest.Test(t, func(t *testing.T) {
		d := &fakeDialer{}
		p := newPool(d, idle)
		defer p.Close()
		f(t, p, d)
	})
}

func mustOpen(t *testing.T, p *Pool[*fakeSess], addr string) *Lease[*fakeSess] {
	t.Helper()
	l, err := p.Open(context.Background(), addr, noop)
	if err != nil {
		t.Fatalf("Open(%s): %v", addr, err)
	}
	return l
}

func TestConcurrentOpensShareOneDial(t *testing.T) {
	test(t, idle, func(t *testing.T, p *Pool[*fakeSess], d *fakeDialer) {
		d.gate = make(chan struct{})
		const n = 10
		leases := make([]*Lease[*fakeSess], n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { leases[i] = mustOpen(t, p, "a") })
		}
		synctest.Wait()
		if got := d.count(); got != 1 {
			t.Fatalf("%d dials started for %d concurrent Opens; want 1", got, n)
		}
		close(d.gate)
		wg.Wait()
		if got := d.count(); got != 1 {
			t.Fatalf("%d dials for %d concurrent Opens; want 1", got, n)
		}
		for _, l := range leases {
			if l.Session() != leases[0].Session() {
				t.Fatal("Opens got different sessions")
			}
		}
		if p.Len() != 1 {
			t.Fatalf("Len = %d; want 1", p.Len())
		}
		mustOpen(t, p, "b")
		if p.Len() != 2 || d.count() != 2 {
			t.Fatalf("after a second address: Len = %d, dials = %d; want 2, 2", p.Len(), d.count())
		}
	})
}

func TestAttemptErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cancelled bool // the first caller's context ends during the dial
		err       error
		waiterErr error // what a waiter with a live context gets
		dials     int   // after the waiter is done
	}{
		{name: "real error fails the waiters", err: errBoom, waiterErr: errBoom, dials: 1},
		{name: "first caller's context ends: the waiter retries", cancelled: true, dials: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			test(t, idle, func(t *testing.T, p *Pool[*fakeSess], d *fakeDialer) {
				d.gate = make(chan struct{})
				if tc.err != nil {
					d.errs = []error{tc.err}
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				firstErr := make(chan error, 1)
				go func() {
					_, err := p.Open(ctx, "a", noop)
					firstErr <- err
				}()
				synctest.Wait() // the first caller's dial waits at the gate
				waiterErr := make(chan error, 1)
				go func() {
					l, err := p.Open(context.Background(), "a", noop)
					if err == nil && l.Session() == nil {
						err = errors.New("nil session")
					}
					waiterErr <- err
				}()
				synctest.Wait()
				if tc.cancelled {
					cancel()
					if err := <-firstErr; !errors.Is(err, context.Canceled) {
						t.Errorf("first caller: %v; want context.Canceled", err)
					}
					synctest.Wait() // the waiter's own dial waits at the gate
				}
				close(d.gate)
				if err := <-waiterErr; !errors.Is(err, tc.waiterErr) || (err == nil) != (tc.waiterErr == nil) {
					t.Errorf("waiter: %v; want %v", err, tc.waiterErr)
				}
				if !tc.cancelled {
					if err := <-firstErr; !errors.Is(err, tc.err) {
						t.Errorf("first caller: %v; want %v", err, tc.err)
					}
				}
				if got := d.count(); got != tc.dials {
					t.Errorf("%d dials; want %d", got, tc.dials)
				}
				wantLen := 0
				if tc.waiterErr == nil {
					wantLen = 1
				}
				if p.Len() != wantLen {
					t.Errorf("Len = %d; want %d", p.Len(), wantLen)
				}
				// A failed attempt is not remembered: the next Open dials.
				if tc.err != nil {
					mustOpen(t, p, "a")
					if got := d.count(); got != tc.dials+1 {
						t.Errorf("%d dials after a retry; want %d", got, tc.dials+1)
					}
				}
			})
		})
	}
}

func TestDeadSessionReplaced(t *testing.T) {
	test(t, idle, func(t *testing.T, p *Pool[*fakeSess], d *fakeDialer) {
		l := mustOpen(t, p, "a")
		old := l.Session()
		old.dead.Store(true)
		l2 := mustOpen(t, p, "a")
		if l2.Session() == old {
			t.Fatal("Open returned the dead session")
		}
		if old.closes.Load() == 0 {
			t.Error("the dead session was not closed")
		}
		l.Release() // a lease on a dropped session is harmless
		if p.Len() != 1 || d.count() != 2 {
			t.Errorf("Len = %d, dials = %d; want 1, 2", p.Len(), d.count())
		}
	})
}

func TestOpenFailure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int  // open fails this many times first
		ctxEnds  bool // and cancels the caller's context as it fails
		wantErr  error
		dials    int
		closed   int // sessions closed
		len      int
	}{
		{name: "once: replaced once", failures: 1, dials: 2, closed: 1, len: 1},
		{name: "twice: error", failures: 2, wantErr: errBoom, dials: 2, closed: 2, len: 0},
		{name: "with the context: kept", failures: 1, ctxEnds: true, wantErr: context.Canceled, dials: 1, closed: 0, len: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			test(t, idle, func(t *testing.T, p *Pool[*fakeSess], d *fakeDialer) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				calls := 0
				l, err := p.Open(ctx, "a", func(*fakeSess) error {
					calls++
					if calls > tc.failures {
						return nil
					}
					if tc.ctxEnds {
						cancel()
					}
					return errBoom
				})
				if (err == nil) != (tc.wantErr == nil) || !errors.Is(err, tc.wantErr) {
					t.Fatalf("Open: %v; want %v", err, tc.wantErr)
				}
				var op *net.OpError
				if err != nil && (!errors.As(err, &op) || op.Net != "fake") {
					t.Errorf("Open error %v is not a *net.OpError from the pool", err)
				}
				if err == nil && l.Session().closes.Load() != 0 {
					t.Error("lease on a closed session")
				}
				closed := 0
				for _, s := range d.made {
					closed += int(s.closes.Load())
				}
				if d.count() != tc.dials || closed != tc.closed || p.Len() != tc.len {
					t.Errorf("dials %d, sessions closed %d, Len %d; want %d, %d, %d",
						d.count(), closed, p.Len(), tc.dials, tc.closed, tc.len)
				}
			})
		})
	}
}

func TestClose(t *testing.T) {
	t.Run("ends an attempt", func(t *testing.T) {
		test(t, idle, func(t *testing.T, p *Pool[*fakeSess], d *fakeDialer) {
			d.gate = make(chan struct{})
			errc := make(chan error, 1)
			go func() {
				_, err := p.Open(context.Background(), "a", noop)
				errc <- err
			}()
			synctest.Wait()
			p.Close()
			if err := <-errc; !errors.Is(err, net.ErrClosed) {
				t.Errorf("Open during Close: %v; want net.ErrClosed", err)
			}
		})
	})
	t.Run("closes a session dialled after it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d := &fakeDialer{}
			release := make(chan struct{})
			// A dial that ignores its context and returns after Close.
			var made *fakeSess
			p := New(Config[*fakeSess]{Net: "fake", IdleTimeout: idle, Dial: func(ctx context.Context, addr string) (*fakeSess, error) {
				<-release
				s, err := d.dial(ctx, addr)
				made = s
				return s, err
			}})
			errc := make(chan error, 1)
			go func() {
				_, err := p.Open(context.Background(), "a", noop)
				errc <- err
			}()
			synctest.Wait()
			closed := make(chan struct{})
			go func() {
				p.Close()
				close(closed)
			}()
			synctest.Wait()
			select {
			case <-closed:
				t.Fatal("Close returned before the attempt in progress ended")
			default:
			}
			close(release)
			<-closed
			if err := <-errc; !errors.Is(err, net.ErrClosed) {
				t.Errorf("Open: %v; want net.ErrClosed", err)
			}
			if made == nil || made.closes.Load() != 1 {
				t.Error("the session dialled after Close was not closed")
			}
		})
	})
	t.Run("closes sessions; later Opens fail", func(t *testing.T) {
		test(t, idle, func(t *testing.T, p *Pool[*fakeSess], d *fakeDialer) {
			l := mustOpen(t, p, "a")
			mustOpen(t, p, "b").Release()
			p.Close()
			p.Close()
			for _, s := range d.made {
				if s.closes.Load() == 0 {
					t.Errorf("session %d not closed", s.id)
				}
			}
			l.Release()
			if _, err := p.Open(context.Background(), "a", noop); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Open after Close: %v; want net.ErrClosed", err)
			}
			if p.Len() != 0 {
				t.Errorf("Len after Close = %d", p.Len())
			}
			time.Sleep(2 * idle) // no idle timer fires after Close
		})
	})
}

func TestRefused(t *testing.T) {
	cause := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	err := Refused(cause)
	if !errors.Is(err, transport.ErrRefused) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%v: want ErrRefused and ECONNREFUSED", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op != cause {
		t.Error("the cause is not reachable with errors.As")
	}
	var ne net.Error
	if !errors.As(err, &ne) || ne.Timeout() {
		t.Error("want a net.Error that is not a timeout")
	}
	if err.Error() != cause.Error() {
		t.Errorf("Error() = %q; want the cause's %q", err.Error(), cause.Error())
	}
}
