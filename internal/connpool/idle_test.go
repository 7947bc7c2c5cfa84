package connpool

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestIdle(t *testing.T) {
	t.Run("closed after the idle timeout", func(t *testing.T) {
		test(t, idle, func(t *testing.T, p *Pool[*fakeSess], d *fakeDialer) {
			l := mustOpen(t, p, "a")
			s := l.Session()
			time.Sleep(2 * idle) // in use: never idle
			if !s.Alive() {
				t.Fatal("a session in use was closed")
			}
			l.Release()
			time.Sleep(idle - time.Nanosecond)
			if !s.Alive() || p.Len() != 1 {
				t.Fatal("closed before the idle timeout")
			}
			time.Sleep(time.Nanosecond)
			synctest.Wait()
			if s.Alive() || p.Len() != 0 {
				t.Fatalf("alive = %v, Len = %d after the idle timeout; want closed and forgotten", s.Alive(), p.Len())
			}
			mustOpen(t, p, "a")
			if d.count() != 2 {
				t.Errorf("%d dials; want a new one after expiry", d.count())
			}
		})
	})
	t.Run("an Open within the timeout reuses and cancels", func(t *testing.T) {
		test(t, idle, func(t *testing.T, p *Pool[*fakeSess], d *fakeDialer) {
			mustOpen(t, p, "a").Release()
			time.Sleep(idle / 2)
			l := mustOpen(t, p, "a")
			time.Sleep(2 * idle)
			if d.count() != 1 || !l.Session().Alive() {
				t.Fatalf("dials %d, alive %v; want the session reused and kept", d.count(), l.Session().Alive())
			}
			l.Release()
			// The timer restarts at this release, not at the first one.
			time.Sleep(idle - time.Nanosecond)
			if !l.Session().Alive() {
				t.Fatal("closed before a full idle timeout since the last release")
			}
			time.Sleep(time.Nanosecond)
			synctest.Wait()
			if l.Session().Alive() {
				t.Fatal("not closed a full idle timeout after the last release")
			}
		})
	})
	t.Run("counts every lease, each release once", func(t *testing.T) {
		test(t, idle, func(t *testing.T, p *Pool[*fakeSess], d *fakeDialer) {
			l1, l2 := mustOpen(t, p, "a"), mustOpen(t, p, "a")
			l1.Release()
			l1.Release()
			time.Sleep(2 * idle)
			if !l2.Session().Alive() {
				t.Fatal("closed while a lease was held")
			}
			l2.Release()
			time.Sleep(idle)
			synctest.Wait()
			if l2.Session().Alive() {
				t.Fatal("not closed after the last release")
			}
		})
	})
	t.Run("a dead session is dropped at its last release", func(t *testing.T) {
		test(t, idle, func(t *testing.T, p *Pool[*fakeSess], d *fakeDialer) {
			l := mustOpen(t, p, "a")
			l.Session().dead.Store(true)
			l.Release()
			if p.Len() != 0 || l.Session().closes.Load() != 1 {
				t.Fatalf("Len %d, closes %d; want 0, 1", p.Len(), l.Session().closes.Load())
			}
		})
	})
	t.Run("zero keeps idle sessions", func(t *testing.T) {
		test(t, 0, func(t *testing.T, p *Pool[*fakeSess], d *fakeDialer) {
			l := mustOpen(t, p, "a")
			l.Release()
			time.Sleep(24 * time.Hour)
			if !l.Session().Alive() || p.Len() != 1 {
				t.Fatal("an idle session was closed with no idle timeout")
			}
		})
	})
	t.Run("Close waits for an expiry in progress", func(t *testing.T) {
		test(t, idle, func(t *testing.T, p *Pool[*fakeSess], d *fakeDialer) {
			l := mustOpen(t, p, "a")
			s := l.Session()
			s.block = make(chan struct{})
			l.Release()
			time.Sleep(idle)
			synctest.Wait() // the timer's callback is blocked in s.Close
			if s.closes.Load() != 1 {
				t.Fatal("the idle timer did not close the session")
			}
			closed := make(chan struct{})
			go func() {
				p.Close()
				close(closed)
			}()
			synctest.Wait()
			select {
			case <-closed:
				t.Fatal("Close returned while an expiry was still closing a session")
			default:
			}
			close(s.block)
			<-closed
		})
	})
}
