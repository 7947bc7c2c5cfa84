package memory_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/nettest"

	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/memory"
)

func makePipe(nw *memory.Network) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		l, err := nw.Listen("node:0")
		if err != nil {
			return nil, nil, nil, err
		}
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := l.Accept()
			accepted <- c
		}()
		c1, err = nw.DialFrom(t0ctx(), "client:1", l.Addr().String())
		if err != nil {
			l.Close()
			return nil, nil, nil, err
		}
		c2 = <-accepted
		stop = func() {
			c1.Close()
			c2.Close()
			l.Close()
		}
		return c1, c2, stop, nil
	}
}

func TestNettestConn(t *testing.T) {
	nw := memory.NewNetwork()
	defer nw.Close()
	nettest.TestConn(t, makePipe(nw))
}

// TestNettestConnWithLatency runs the suite (in real time: nettest calls
// t.Run, which a synctest bubble forbids) with latency, jitter and a
// bandwidth limit, so that reads wait on delivery timers.
func TestNettestConnWithLatency(t *testing.T) {
	nw := memory.NewNetwork(memory.WithSeed(3))
	defer nw.Close()
	nw.SetLatency(100*time.Microsecond, 200*time.Microsecond)
	nw.SetBandwidth(100 << 20)
	nettest.TestConn(t, makePipe(nw))
}

func TestCloseSemantics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		l := listen(t, nw, "b:1")
		c, s := connect(t, nw, l, "a:1")

		if _, err := c.Write([]byte("last words")); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		got, err := io.ReadAll(s)
		if err != nil || string(got) != "last words" {
			t.Fatalf("ReadAll = %q, %v; want data then EOF", got, err)
		}
		if _, err := s.Write([]byte("x")); !errors.Is(err, memory.ErrBrokenPipe) {
			t.Fatalf("Write after peer closed: %v, want ErrBrokenPipe", err)
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after Close: %v, want net.ErrClosed", err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
		}
		var op *net.OpError
		if _, err := c.Write([]byte("x")); !errors.As(err, &op) {
			t.Fatalf("Write error %T is not *net.OpError", err)
		}
	})
}

func TestAddrs(t *testing.T) {
	nw := memory.NewNetwork()
	defer nw.Close()
	l := listen(t, nw, "b:7000")
	c, s := connect(t, nw, l, "a:1")
	if got := c.RemoteAddr().String(); got != "b:7000" {
		t.Errorf("client RemoteAddr = %q", got)
	}
	if c.LocalAddr().Network() != "memory" {
		t.Errorf("Network() = %q", c.LocalAddr().Network())
	}
	if s.RemoteAddr().String() != c.LocalAddr().String() || s.LocalAddr().String() != "b:7000" {
		t.Errorf("server addrs %v %v vs client %v", s.LocalAddr(), s.RemoteAddr(), c.LocalAddr())
	}
	if _, _, err := net.SplitHostPort(c.LocalAddr().String()); err != nil {
		t.Errorf("LocalAddr %q: %v", c.LocalAddr(), err)
	}
}

func TestBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithBufferSize(1000))
		defer nw.Close()
		l := listen(t, nw, "b:1")
		c, s := connect(t, nw, l, "a:1")
		wrote := make(chan int, 1)
		go func() {
			n, _ := c.Write(make([]byte, 2500))
			wrote <- n
		}()
		synctest.Wait()
		select {
		case n := <-wrote:
			t.Fatalf("Write of 2500 bytes into a 1000-byte buffer returned %d without a reader", n)
		default:
		}
		buf := make([]byte, 2500)
		if _, err := io.ReadFull(s, buf); err != nil {
			t.Fatal(err)
		}
		if n := <-wrote; n != 2500 {
			t.Fatalf("wrote %d", n)
		}
	})
}

func TestDeadlineErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		l := listen(t, nw, "b:1")
		c, _ := connect(t, nw, l, "a:1")
		start := time.Now()
		c.SetReadDeadline(start.Add(3 * time.Second))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read error %v is not a timeout", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("timed out after %v, want 3s", d)
		}
	})
}

// TestConcurrentWritersSynctest: two goroutines writing one conn inside a
// bubble must not hang it (they do with net.Pipe, whose writers wait on a
// mutex) and their Writes must not interleave.
func TestConcurrentWritersSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithBufferSize(4096))
		defer nw.Close()
		l := listen(t, nw, "b:1")
		c, s := connect(t, nw, l, "a:1")
		const size, writes = 10000, 20
		for _, v := range []byte{'x', 'y'} {
			go func() {
				msg := bytes.Repeat([]byte{v}, size)
				for range writes {
					if _, err := c.Write(msg); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		buf := make([]byte, size)
		for range 2 * writes {
			if _, err := io.ReadFull(s, buf); err != nil {
				t.Fatal(err)
			}
			if bytes.Count(buf, buf[:1]) != size {
				t.Fatal("writes interleaved")
			}
		}
	})
}

// TestWriteThenPeerCloses: a Write that queued all its bytes succeeds even
// if the peer reads them and closes at once.
func TestWriteThenPeerCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		l := listen(t, nw, "b:1")
		for range 100 {
			c, s := connect(t, nw, l, "a:1")
			go func() {
				io.ReadFull(s, make([]byte, 3))
				s.Close()
			}()
			if _, err := c.Write([]byte("abc")); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}
	})
}

// A conn's written bytes wait in pooled buffers, given back once read: a
// steady exchange allocates nothing per Write.
func TestWritesAllocateNothingInSteadyState(t *testing.T) {
	nw := memory.NewNetwork()
	defer nw.Close()
	c1, c2, stop, err := makePipe(nw)()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, size := range []int{64, 1 << 10, 64 << 10} {
		out, in := make([]byte, size), make([]byte, size)
		allocs := testing.AllocsPerRun(200, func() {
			if _, err := c1.Write(out); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c2, in); err != nil {
				t.Fatal(err)
			}
		})
		if allocs >= 1 {
			t.Errorf("%d-byte writes: %.1f allocations per write and read, want none", size, allocs)
		}
	}
}

// WriteNow writes what the buffer has room for and returns at once: all
// of a write that fits, part of one that does not, nothing into a full
// buffer or while a Write waits for room; and the errors of a closed conn.
func TestWriteNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithBufferSize(1000))
		defer nw.Close()
		l := listen(t, nw, "b:1")
		c, s := connect(t, nw, l, "a:1")
		nwr, ok := c.(transport.NowWriter)
		if !ok {
			t.Fatalf("a memory conn (%T) is not a transport.NowWriter", c)
		}
		data := bytes.Repeat([]byte("0123456789"), 150)
		for _, step := range []struct{ len, want int }{{600, 600}, {600, 400}, {10, 0}} {
			if n, err := nwr.WriteNow(data[:step.len]); n != step.want || err != nil {
				t.Fatalf("WriteNow of %d bytes: %d, %v; want %d, nil", step.len, n, err, step.want)
			}
		}
		wrote := make(chan error, 1)
		go func() { // waits for room, holding the write side
			_, err := c.Write(data[:300])
			wrote <- err
		}()
		synctest.Wait()
		if n, err := nwr.WriteNow(data[:10]); n != 0 || err != nil {
			t.Fatalf("WriteNow while a Write waits: %d, %v; want 0, nil", n, err)
		}
		got := make([]byte, 1300)
		if _, err := io.ReadFull(s, got); err != nil {
			t.Fatal(err)
		}
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append(data[:1000:1000], data[:300]...)) {
			t.Fatal("the bytes written now and by Write arrived wrong")
		}
		c.Close()
		if _, err := nwr.WriteNow(data[:1]); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("WriteNow on a closed conn: %v, want net.ErrClosed", err)
		}
	})
}

// WriteNow obeys the network's faults as Write does: bytes written on a
// partitioned link are held (they count against the buffer) and arrive
// once it heals; under latency they arrive late; on a reset link
// WriteNow fails with ErrConnReset.
func TestWriteNowUnderFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithBufferSize(1000))
		defer nw.Close()
		l := listen(t, nw, "b:1")
		c, s := connect(t, nw, l, "a:1")
		nwr := c.(transport.NowWriter)

		nw.Partition([]string{"a:1"}, []string{"b:1"})
		if n, err := nwr.WriteNow(bytes.Repeat([]byte("p"), 600)); n != 600 || err != nil {
			t.Fatalf("WriteNow on a partitioned link: %d, %v; want 600 held", n, err)
		}
		if n, _ := nwr.WriteNow(bytes.Repeat([]byte("q"), 600)); n != 400 {
			t.Fatalf("WriteNow past the held bytes: %d, want the 400 left", n)
		}
		got := make([]byte, 1000)
		read := make(chan error, 1)
		go func() { _, err := io.ReadFull(s, got); read <- err }()
		time.Sleep(time.Minute)
		select {
		case <-read:
			t.Fatal("bytes crossed a partition")
		default:
		}
		nw.Heal()
		if err := <-read; err != nil || got[0] != 'p' || got[999] != 'q' {
			t.Fatalf("after the heal: %v, %q...%q", err, got[0], got[999])
		}

		nw.SetLatency(30*time.Millisecond, 0)
		start := time.Now()
		if n, err := nwr.WriteNow([]byte("late")); n != 4 || err != nil {
			t.Fatalf("WriteNow under latency: %d, %v", n, err)
		}
		if _, err := io.ReadFull(s, got[:4]); err != nil || time.Since(start) != 30*time.Millisecond {
			t.Fatalf("bytes written now arrived after %v (%v), want 30ms", time.Since(start), err)
		}
		nw.SetLatency(0, 0)

		nw.ResetLink("a:1", "b:1")
		if _, err := nwr.WriteNow([]byte("x")); !errors.Is(err, memory.ErrConnReset) {
			t.Fatalf("WriteNow on a reset link: %v, want ErrConnReset", err)
		}
	})
}
