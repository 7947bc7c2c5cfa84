package memory_test

import (
	"bytes"
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

// expectBytes checks that r delivers exactly want next.
func expectBytes(t *testing.T, r net.Conn, want string) {
	t.Helper()
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != want {
		t.Fatalf("read %q, %v; want %q", buf, err, want)
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
		if _, err := ab.Write([]byte("held ")); err != nil {
			t.Fatalf("Write across a partition must succeed silently: %v", err)
		}
		expectSilence(t, ba)
		if _, err := ba.Write([]byte("held too ")); err != nil {
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
		// The bytes held by the partition come first, with no gap.
		expectBytes(t, ba, "held ")
		expectMessage(t, ab, ba, "after heal")
		expectBytes(t, ab, "held too ")
		expectMessage(t, ba, ab, "after heal too")
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
		// An anonymous conn is never partitioned, in either direction,
		// even when its listener is in a group.
		nw.Partition([]string{"a:1"}, []string{"c:1"})
		expectMessage(t, anon, canon, "to a listed node")
		expectMessage(t, canon, anon, "from a listed node")
	})
}

// expectRead checks that r delivers exactly want, all of it at the virtual
// time at.
func expectRead(t *testing.T, r net.Conn, want string, at time.Time) {
	t.Helper()
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != want {
		t.Fatalf("read %q, %v; want %q", buf, err, want)
	}
	if now := time.Now(); !now.Equal(at) {
		t.Fatalf("%q read at %v, want %v", want, now, at)
	}
}

// Bytes in flight when a link goes silent, and bytes written during the
// silence, are held: nothing of them arrives while it lasts, and they all
// arrive in order, with no gap, one latency after the heal. Bytes already
// delivered stay readable.
func TestSilenceHoldsBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		nw.SetLatency(100*time.Millisecond, 0)
		lb := listen(t, nw, "b:1")
		ab, ba := connect(t, nw, lb, "a:1")
		start := time.Now()
		ab.Write([]byte("0")) // arrives at 100ms
		time.Sleep(150 * time.Millisecond)
		ab.Write([]byte("1")) // due at 250ms, but...
		time.Sleep(50 * time.Millisecond)
		nw.Partition([]string{"a:1"}, []string{"b:1"}) // ... at 200ms
		for _, s := range []string{"2", "34", "5"} {
			if _, err := ab.Write([]byte(s)); err != nil {
				t.Fatalf("Write during the partition: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		expectRead(t, ba, "0", start.Add(500*time.Millisecond)) // delivered before
		expectSilence(t, ba)                                    // until 1.5s
		time.Sleep(time.Hour)
		expectSilence(t, ba)
		heal := time.Now()
		nw.Heal()
		expectRead(t, ba, "12345", heal.Add(100*time.Millisecond))
		expectMessage(t, ab, ba, "then as usual")
		expectMessage(t, ba, ab, "both ways")
	})
}

// Two faults on one link: the bytes stay held until the last is lifted.
func TestHeldUntilEveryFaultLifted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		nw.SetLinkLatency("a:1", "b:1", 30*time.Millisecond, 0)
		lb := listen(t, nw, "b:1")
		ab, ba := connect(t, nw, lb, "a:1")
		nw.Partition([]string{"a:1"}, []string{"b:1"})
		ab.Write([]byte("a"))
		nw.CutLink("a:1", "b:1")
		ab.Write([]byte("b"))
		nw.BlackHole("a:1")
		ab.Write([]byte("c"))
		nw.Heal()
		expectSilence(t, ba)
		nw.RestoreLink("a:1", "b:1")
		expectSilence(t, ba)
		ab.Write([]byte("d"))
		heal := time.Now()
		nw.Unblackhole("a:1")
		expectRead(t, ba, "abcd", heal.Add(30*time.Millisecond))
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
		expectBytes(t, ba, "x")
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
		anon, banon := connect(t, nw, lb, "")
		nw.BlackHole("b:1")
		if _, err := ab.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		expectSilence(t, ba)
		ba.Write([]byte("y"))
		expectSilence(t, ab)
		anon.Write([]byte("z"))
		expectSilence(t, banon)
		expectMessage(t, ac, ca, "others fine")
		expectDialHangs(t, nw, "a:1", "b:1")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := nw.Dial(ctx, "b:1"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("anonymous dial to a black hole: %v", err)
		}
		nw.Unblackhole("b:1")
		expectBytes(t, ba, "x")
		expectBytes(t, ab, "y")
		expectBytes(t, banon, "z")
		expectMessage(t, ab, ba, "back")
	})
}

// pattern returns n bytes that tell their offset apart.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// A silent link fills the direction's buffer, then blocks the writer, as
// a full TCP send buffer would, until the heal; then every byte arrives,
// in order. A write deadline ends the wait with the bytes that fitted.
func TestSilentWriterBlocksWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithBufferSize(100))
		defer nw.Close()
		nw.SetLatency(10*time.Millisecond, 0)
		lb := listen(t, nw, "b:1")
		ab, ba := connect(t, nw, lb, "a:1")
		ab2, ba2 := connect(t, nw, lb, "a:1")
		nw.CutLink("a:1", "b:1")
		msg := pattern(1000)
		type result struct {
			n   int
			err error
			at  time.Time
		}
		done := make(chan result, 1)
		go func() {
			n, err := ab.Write(msg)
			done <- result{n, err, time.Now()}
		}()
		time.Sleep(time.Hour)
		select {
		case r := <-done:
			t.Fatalf("Write into a silent link returned (%d, %v); want it blocked on the full buffer", r.n, r.err)
		default:
		}
		expectSilence(t, ba)

		// Another conn on the link, with a write deadline: it stops at
		// the deadline, having written what the buffer held.
		ab2.SetWriteDeadline(time.Now().Add(time.Minute))
		start := time.Now()
		n, err := ab2.Write(msg)
		if !errors.Is(err, os.ErrDeadlineExceeded) || n != 100 || time.Since(start) != time.Minute {
			t.Fatalf("Write with a deadline into a silent link = %d, %v after %v; want 100, a timeout after 1m",
				n, err, time.Since(start))
		}

		heal := time.Now()
		nw.RestoreLink("a:1", "b:1")
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(ba, got[:100]); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(heal); d != 10*time.Millisecond {
			t.Fatalf("held bytes arrived %v after the heal, want the 10ms latency", d)
		}
		if _, err := io.ReadFull(ba, got[100:]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatal("bytes held by a silent link arrived corrupted or out of order")
		}
		if r := <-done; r.n != len(msg) || r.err != nil {
			t.Fatalf("blocked Write after the heal = %d, %v", r.n, r.err)
		}
		got2 := make([]byte, 100)
		if _, err := io.ReadFull(ba2, got2); err != nil || !bytes.Equal(got2, msg[:100]) {
			t.Fatalf("the timed-out Write's bytes: %v, %v", got2, err)
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

// What an end wrote before it gave up during a silence is not delivered
// after the heal, and a writer blocked on the far end's full buffer is
// reset at the heal, as by the RST answering its retransmission.
func TestGaveUpBehindSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithBufferSize(10))
		defer nw.Close()
		lb := listen(t, nw, "b:1")
		ab, ba := connect(t, nw, lb, "a:1")
		nw.CutLink("a:1", "b:1")
		ab.Write([]byte("given up"))
		ab.Close()
		type result struct {
			n   int
			err error
		}
		done := make(chan result, 1)
		go func() {
			n, err := ba.Write(make([]byte, 100))
			done <- result{n, err}
		}()
		time.Sleep(time.Minute)
		select {
		case r := <-done:
			t.Fatalf("Write into a silent link returned (%d, %v) with the buffer full", r.n, r.err)
		default:
		}
		heal := time.Now()
		nw.RestoreLink("a:1", "b:1")
		if r := <-done; r.n != 10 || !errors.Is(r.err, memory.ErrConnReset) || time.Since(heal) != 0 {
			t.Fatalf("blocked Write at the heal = %d, %v after %v; want 10, ErrConnReset at once", r.n, r.err, time.Since(heal))
		}
		if n, err := ba.Read(make([]byte, 64)); !errors.Is(err, memory.ErrConnReset) {
			t.Fatalf("Read after the reset = %d, %v; want ErrConnReset and none of the given-up bytes", n, err)
		}
	})
}
