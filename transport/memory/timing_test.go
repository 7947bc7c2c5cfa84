package memory_test

import (
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

func TestLatencyExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		nw.SetLatency(10*time.Millisecond, 0)
		nw.SetLinkLatency("a:1", "b:1", 50*time.Millisecond, 0)
		lb := listen(t, nw, "b:1")
		go func() {
			c, err := lb.Accept()
			if err == nil {
				t.Cleanup(func() { c.Close() })
			}
		}()
		start := time.Now()
		c, err := nw.DialFrom(context.Background(), "a:1", "b:1")
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Fatalf("dial took %v, want one round trip (100ms)", d)
		}

		ab, ba := connect(t, nw, lb, "a:1")
		start = time.Now()
		ab.Write([]byte("ping"))
		buf := make([]byte, 4)
		io.ReadFull(ba, buf)
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Fatalf("one-way delay %v, want 50ms", d)
		}
		ba.Write([]byte("pong"))
		io.ReadFull(ab, buf)
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Fatalf("round trip %v, want 100ms", d)
		}

		// Anonymous dials get the network-wide latency.
		xb, bx := connect(t, nw, lb, "")
		start = time.Now()
		xb.Write([]byte("anon"))
		io.ReadFull(bx, buf)
		if d := time.Since(start); d != 10*time.Millisecond {
			t.Fatalf("anonymous one-way delay %v, want 10ms", d)
		}
	})
}

func TestBandwidthExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		nw.SetLinkBandwidth("a:1", "b:1", 1000) // bytes per second
		nw.SetLinkLatency("a:1", "b:1", 20*time.Millisecond, 0)
		lb := listen(t, nw, "b:1")
		ab, ba := connect(t, nw, lb, "a:1")
		ab2, ba2 := connect(t, nw, lb, "a:1") // shares the link

		start := time.Now()
		ab.Write(make([]byte, 3000))
		ab2.Write(make([]byte, 1000))
		if _, err := io.ReadFull(ba, make([]byte, 3000)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 3*time.Second+20*time.Millisecond {
			t.Fatalf("3000 bytes at 1000 B/s took %v, want 3.02s", d)
		}
		if _, err := io.ReadFull(ba2, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 4*time.Second+20*time.Millisecond {
			t.Fatalf("the second conn's 1000 bytes queued behind: %v, want 4.02s", d)
		}
		// The other direction is independent.
		start = time.Now()
		ba.Write(make([]byte, 500))
		io.ReadFull(ab, make([]byte, 500))
		if d := time.Since(start); d != 520*time.Millisecond {
			t.Fatalf("reverse direction took %v, want 520ms", d)
		}
	})
}

// arrivals writes count one-byte messages 1ms apart on a jittery link and
// returns when each arrived.
func arrivals(t *testing.T, seed int64, count int) []time.Duration {
	var out []time.Duration
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithSeed(seed))
		defer nw.Close()
		nw.SetLatency(10*time.Millisecond, 50*time.Millisecond)
		lb := listen(t, nw, "b:1")
		ab, ba := connect(t, nw, lb, "a:1")
		start := time.Now()
		go func() {
			for i := range count {
				ab.Write([]byte{byte(i)})
				time.Sleep(time.Millisecond)
			}
		}()
		b := make([]byte, 1)
		for i := range count {
			if _, err := ba.Read(b); err != nil {
				t.Fatal(err)
			}
			if b[0] != byte(i) {
				t.Fatalf("byte %d arrived as %d: jitter reordered the stream", i, b[0])
			}
			out = append(out, time.Since(start))
		}
	})
	return out
}

func TestJitterSeeded(t *testing.T) {
	a := arrivals(t, 7, 30)
	b := arrivals(t, 7, 30)
	c := arrivals(t, 8, 30)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different arrivals:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatalf("different seeds, same arrivals: %v", a)
	}
	for i, d := range a {
		if earliest := time.Duration(i)*time.Millisecond + 10*time.Millisecond; d < earliest {
			t.Fatalf("message %d arrived after %v, before its base latency", i, d)
		}
	}
}

// Bytes held by a silent link leave at the heal, in one burst per
// direction that the bandwidth limit spreads out like any other.
func TestHeldBytesBandwidthExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		nw.SetLinkBandwidth("a:1", "b:1", 1000) // bytes per second
		nw.SetLinkLatency("a:1", "b:1", 20*time.Millisecond, 0)
		lb := listen(t, nw, "b:1")
		ab, ba := connect(t, nw, lb, "a:1")
		nw.CutLink("a:1", "b:1")
		ab.Write(make([]byte, 1500))
		ab.Write(make([]byte, 500))
		time.Sleep(time.Hour)
		heal := time.Now()
		nw.RestoreLink("a:1", "b:1")
		if _, err := io.ReadFull(ba, make([]byte, 2000)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(heal); d != 2*time.Second+20*time.Millisecond {
			t.Fatalf("2000 held bytes at 1000 B/s arrived %v after the heal, want 2.02s", d)
		}
	})
}

// heldArrivals holds one byte on each of several conns of a jittery link,
// heals it and returns when each arrived.
func heldArrivals(t *testing.T, seed int64) []time.Duration {
	const conns = 8
	out := make([]time.Duration, conns)
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithSeed(seed))
		defer nw.Close()
		nw.SetLatency(10*time.Millisecond, 50*time.Millisecond)
		lb := listen(t, nw, "b:1")
		var ws, rs []net.Conn
		for range conns {
			w, r := connect(t, nw, lb, "a:1")
			ws, rs = append(ws, w), append(rs, r)
		}
		nw.Partition([]string{"a:1"}, []string{"b:1"})
		for _, w := range ws {
			w.Write([]byte{1})
		}
		time.Sleep(time.Second)
		heal := time.Now()
		nw.Heal()
		done := make(chan struct{})
		for i, r := range rs {
			go func() {
				r.Read(make([]byte, 1))
				out[i] = time.Since(heal)
				done <- struct{}{}
			}()
		}
		for range rs {
			<-done
		}
	})
	return out
}

// Heals schedule held bytes in a fixed order: a seed replays them.
func TestHeldJitterSeeded(t *testing.T) {
	a, b, c := heldArrivals(t, 7), heldArrivals(t, 7), heldArrivals(t, 8)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different arrivals after the heal:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatalf("different seeds, same arrivals: %v", a)
	}
	for i, d := range a {
		if d < 10*time.Millisecond || d >= 60*time.Millisecond {
			t.Fatalf("conn %d's held byte arrived %v after the heal, want within [10ms, 60ms)", i, d)
		}
	}
}

// Bytes written after the last fault is lifted are due at once (a
// network without faults does not read the clock for them), yet never
// before bytes written earlier under latency: order holds.
func TestLatencyLiftedKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		lb := listen(t, nw, "b:1")
		ab, ba := connect(t, nw, lb, "a:1")
		nw.SetLatency(10*time.Millisecond, 0)
		start := time.Now()
		ab.Write([]byte("late"))
		nw.SetLatency(0, 0)
		ab.Write([]byte("next"))
		buf := make([]byte, 8)
		if _, err := io.ReadFull(ba, buf); err != nil {
			t.Fatal(err)
		}
		if string(buf) != "latenext" || time.Since(start) != 10*time.Millisecond {
			t.Fatalf("read %q after %v, want \"latenext\" after 10ms", buf, time.Since(start))
		}
		start = time.Now()
		ab.Write([]byte("now!"))
		if _, err := io.ReadFull(ba, buf[:4]); err != nil || time.Since(start) != 0 {
			t.Fatalf("without faults, bytes took %v (%v)", time.Since(start), err)
		}
	})
}
