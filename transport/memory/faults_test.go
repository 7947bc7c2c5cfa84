package memory_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/memory"
)

// expectSilence checks that nothing arrives on r within a virtual second.
func expectSilence(t *testing.T, r net.Conn) {
	t.Helper()
	r.SetReadDeadline(time.Now().Add(time.Second))
	defer r.SetReadDeadline(time.Time{})
	if n, err := r.Read(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read on a silent link = %d, %v; want a timeout", n, err)
	}
}

// expectMessage writes msg on w and checks that r reads exactly it.
func expectMessage(t *testing.T, w, r net.Conn, msg string) {
	t.Helper()
	if _, err := w.Write([]byte(msg)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != msg {
		t.Fatalf("read %q, %v; want %q", buf, err, msg)
	}
}

// expectDialHangs checks that a dial from from to to waits until its
// context ends.
func expectDialHangs(t *testing.T, nw *memory.Network, from, to string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := nw.DialFrom(ctx, from, to)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial %s -> %s: %v, want context.DeadlineExceeded", from, to, err)
	}
	if d := time.Since(start); d != 5*time.Second {
		t.Fatalf("dial gave up after %v, want 5s", d)
	}
}

func TestPartitionHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		la, lb, lc := listen(t, nw, "a:1"), listen(t, nw, "b:1"), listen(t, nw, "c:1")
		ab, ba := connect(t, nw, lb, "a:1")
		bc, cb := connect(t, nw, lc, "b:1")
		_ = la

		nw.Partition([]string{"a:1"}, []string{"b:1", "c:1"})
		if _, err := ab.Write([]byte("lost")); err != nil {
			t.Fatalf("Write across a partition must succeed silently: %v", err)
		}
		expectSilence(t, ba)
		if _, err := ba.Write([]byte("lost too")); err != nil {
			t.Fatal(err)
		}
		expectSilence(t, ab)
		expectMessage(t, bc, cb, "same side")
		expectDialHangs(t, nw, "a:1", "c:1")

		// A dial waiting when the partition heals completes.
		dialed := make(chan error, 1)
		go func() {
			c, err := nw.DialFrom(context.Background(), "c:1", "a:1")
			if err == nil {
				c.Close()
			}
			dialed <- err
		}()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := la.Accept()
			accepted <- c
		}()
		synctest.Wait()
		nw.Heal()
		if err := <-dialed; err != nil {
			t.Fatalf("dial after heal: %v", err)
		}
		(<-accepted).Close()
		expectMessage(t, ab, ba, "after heal")
	})
}

func TestPartitionUnlistedGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		lc := listen(t, nw, "c:1")
		bc, cb := connect(t, nw, lc, "b:1")
		ac, ca := connect(t, nw, lc, "a:1")
		anon, canon := connect(t, nw, lc, "")
		nw.Partition([]string{"a:1"}) // b and c, in no group, are together
		expectMessage(t, bc, cb, "unlisted together")
		expectMessage(t, anon, canon, "anonymous is never partitioned")
		ac.Write([]byte("x"))
		expectSilence(t, ca)
	})
}

func TestPartitionDropsBytesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		nw.SetLatency(100*time.Millisecond, 0)
		lb := listen(t, nw, "b:1")
		ab, ba := connect(t, nw, lb, "a:1")
		ab.Write([]byte("in flight"))
		time.Sleep(50 * time.Millisecond)
		nw.Partition([]string{"a:1"}, []string{"b:1"})
		time.Sleep(time.Second)
		nw.Heal()
		expectSilence(t, ba)
	})
}

func TestCutRestore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		lb, lc := listen(t, nw, "b:1"), listen(t, nw, "c:1")
		ab, ba := connect(t, nw, lb, "a:1")
		ac, ca := connect(t, nw, lc, "a:1")
		nw.CutLink("b:1", "a:1")
		ab.Write([]byte("x"))
		expectSilence(t, ba)
		expectMessage(t, ac, ca, "other link fine")
		expectDialHangs(t, nw, "b:1", "a:1")
		nw.RestoreLink("a:1", "b:1")
		expectMessage(t, ba, ab, "restored")
	})
}

func TestResetLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		lb, lc := listen(t, nw, "b:1"), listen(t, nw, "c:1")
		ab, ba := connect(t, nw, lb, "a:1")
		ac, ca := connect(t, nw, lc, "a:1")
		readErr := make(chan error, 1)
		go func() {
			_, err := ba.Read(make([]byte, 1))
			readErr <- err
		}()
		synctest.Wait()
		nw.ResetLink("a:1", "b:1")
		if err := <-readErr; !errors.Is(err, memory.ErrConnReset) {
			t.Fatalf("blocked Read after ResetLink: %v", err)
		}
		if _, err := ab.Write([]byte("x")); !errors.Is(err, memory.ErrConnReset) {
			t.Fatalf("Write after ResetLink: %v", err)
		}
		expectMessage(t, ac, ca, "other link untouched")
		ab2, ba2 := connect(t, nw, lb, "a:1")
		expectMessage(t, ab2, ba2, "new dial works")
	})
}

func TestKillAndRelisten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		lb := listen(t, nw, "b:1")
		lc := listen(t, nw, "c:1")
		ab, ba := connect(t, nw, lb, "a:1") // to the killed node
		bc, cb := connect(t, nw, lc, "b:1") // from the killed node
		acceptErr := make(chan error, 1)
		go func() {
			_, err := lb.Accept()
			acceptErr <- err
		}()
		readErr := make(chan error, 1)
		go func() {
			_, err := cb.Read(make([]byte, 1))
			readErr <- err
		}()
		synctest.Wait()
		start := time.Now()
		nw.Kill("b:1")
		if err := <-readErr; !errors.Is(err, memory.ErrConnReset) {
			t.Fatalf("far side Read after Kill: %v", err)
		}
		if err := <-acceptErr; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Kill: %v", err)
		}
		if time.Since(start) != 0 {
			t.Fatal("Kill was not immediate")
		}
		for _, c := range []net.Conn{ab, ba, bc, cb} {
			if _, err := c.Write([]byte("x")); !errors.Is(err, memory.ErrConnReset) {
				t.Fatalf("Write after Kill: %v", err)
			}
		}
		if _, err := nw.DialFrom(context.Background(), "a:1", "b:1"); !errors.Is(err, transport.ErrRefused) {
			t.Fatalf("dial to killed node: %v, want ErrRefused", err)
		}
		lb2 := listen(t, nw, "b:1")
		ab2, ba2 := connect(t, nw, lb2, "a:1")
		expectMessage(t, ab2, ba2, "restarted")
	})
}

// A crashed host dials nothing: dials from a killed address fail, at once
// or when the Kill happens while they wait, until it listens again.
func TestKilledHostCannotDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		listen(t, nw, "b:1")
		lc := listen(t, nw, "c:1")
		// A dial from b waiting on a silent link when b crashes.
		nw.CutLink("b:1", "c:1")
		waiting := make(chan error, 1)
		go func() {
			_, err := nw.DialFrom(context.Background(), "b:1", "c:1")
			waiting <- err
		}()
		synctest.Wait()
		start := time.Now()
		nw.Kill("b:1")
		if err := <-waiting; !errors.Is(err, memory.ErrHostDown) {
			t.Fatalf("dial waiting when its host was killed: %v, want ErrHostDown", err)
		}
		if time.Since(start) != 0 {
			t.Fatal("a waiting dial from a killed host did not fail at once")
		}
		nw.RestoreLink("b:1", "c:1")
		if _, err := nw.DialFrom(context.Background(), "b:1", "c:1"); !errors.Is(err, memory.ErrHostDown) {
			t.Fatalf("dial from a killed host: %v, want ErrHostDown", err)
		}
		// Killing a host does not stop others, or anonymous dials.
		connect(t, nw, lc, "a:1")
		connect(t, nw, lc, "")
		// The restarted node listens first, then dials.
		listen(t, nw, "b:1")
		connect(t, nw, lc, "b:1")
	})
}

func TestBlackHole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		lb, lc := listen(t, nw, "b:1"), listen(t, nw, "c:1")
		ab, ba := connect(t, nw, lb, "a:1")
		ac, ca := connect(t, nw, lc, "a:1")
		nw.BlackHole("b:1")
		if _, err := ab.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		expectSilence(t, ba)
		ba.Write([]byte("y"))
		expectSilence(t, ab)
		expectMessage(t, ac, ca, "others fine")
		expectDialHangs(t, nw, "a:1", "b:1")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := nw.Dial(ctx, "b:1"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("anonymous dial to a black hole: %v", err)
		}
		nw.Unblackhole("b:1")
		expectMessage(t, ab, ba, "back")
	})
}

// TestSilentWriterNotBlocked: a writer blocked on a full buffer when its
// link goes silent is released (its bytes vanish).
func TestSilentWriterNotBlocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithBufferSize(100))
		defer nw.Close()
		lb := listen(t, nw, "b:1")
		ab, _ := connect(t, nw, lb, "a:1")
		done := make(chan error, 1)
		go func() {
			_, err := ab.Write(make([]byte, 1000))
			done <- err
		}()
		synctest.Wait()
		nw.CutLink("a:1", "b:1")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestTrace(t *testing.T) {
	var log []string
	nw := memory.NewNetwork(memory.WithTrace(func(s string) { log = append(log, s) }))
	nw.Partition([]string{"a:1"}, []string{"b:1"})
	nw.Heal()
	nw.Kill("a:1")
	nw.Close()
	got := strings.Join(log, "\n")
	for _, want := range []string{"partition [a:1] | [b:1]", "heal", "kill a:1", "network closed"} {
		if !strings.Contains(got, want) {
			t.Errorf("trace %q lacks %q", got, want)
		}
	}
}

// A Close or a crash does not cross a silent link: the far end hears
// nothing (its writes vanish, its reads time out) until the link heals,
// then its next Write resets the conn, as after a FIN lost in a partition.
func TestCloseAndKillBehindSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		lb, lc := listen(t, nw, "b:1"), listen(t, nw, "c:1")
		ab, ba := connect(t, nw, lb, "a:1")
		ac, ca := connect(t, nw, lc, "a:1")
		nw.Partition([]string{"a:1"}, []string{"b:1", "c:1"})
		ab.Close() // a closes its conn to b
		nw.Kill("c:1")
		for _, c := range []net.Conn{ba, ac} { // the far ends
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatalf("Write behind a partition after the far end went: %v", err)
			}
			expectSilence(t, c)
		}
		_ = ca
		nw.Heal()
		for _, c := range []net.Conn{ba, ac} {
			// Still nothing to read: the gone end sends nothing.
			expectSilence(t, c)
			// The first segment after the heal draws a reset.
			if _, err := c.Write([]byte("x")); !errors.Is(err, memory.ErrConnReset) {
				t.Fatalf("Write after the heal: %v, want ErrConnReset", err)
			}
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, memory.ErrConnReset) {
				t.Fatalf("Read after the reset: %v, want ErrConnReset", err)
			}
		}
	})
}
