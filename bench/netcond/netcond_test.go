package netcond

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/peerkit/peerkit/bench"
)

func serve(t *testing.T) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Serve(ln, "app", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The whole comparison over loopback, briefly: every number comes out.
func TestConnectLoopback(t *testing.T) {
	s := serve(t)
	plan := Plan{Transports: []string{"tcp", "quic", "mux"}, Sizes: []int{1 << 10}, Small: 64, Bulk: 16 << 10, Duration: 50 * time.Millisecond}
	steps := 0
	rs, err := Connect(context.Background(), s.Addr().String(), plan, "loopback", func(string, ...any) { steps++ })
	if err != nil {
		t.Fatal(err)
	}
	if want := len(plan.Transports) * plan.Steps(); steps != want {
		t.Errorf("%d progress steps, want %d", steps, want)
	}
	for _, r := range rs {
		t.Logf("%+v", r)
		for _, tp := range r.Tput {
			if tp.OutErr != "" || tp.InErr != "" || tp.Out.Msgs == 0 || tp.In.Msgs == 0 {
				t.Errorf("%s %d: throughput out %v (%s), in %v (%s)", r.Transport, tp.Size, tp.Out, tp.OutErr, tp.In, tp.InErr)
			}
		}
		if r.RTTErr != "" || r.RTT50 == 0 || r.HOLErr != "" || r.HOLOther99 == 0 || r.HOLSame99 == 0 {
			t.Errorf("%s: round trips %v/%v (%s), beside bulk %v/%v (%s)", r.Transport, r.RTT50, r.RTT99, r.RTTErr, r.HOLOther99, r.HOLSame99, r.HOLErr)
		}
		if r.RemovalErr != "" || r.Removal < 500*time.Millisecond || r.Silence != "app" {
			t.Errorf("%s: removal %v by %q (%s)", r.Transport, r.Removal, r.Silence, r.RemovalErr)
		}
	}
}

// Bad input gets an ERR line or a closed connection, never a panic, and
// the server keeps serving.
func TestBadInput(t *testing.T) {
	s := serve(t)
	for _, in := range []string{
		"", "\n", "NOPE\n", "HELLO\n", "HELLO 2\n", "NODES tcp 99 default\n", "NODES memory 1 default\n",
		"NODES tcp 1 slow\n", "MODE 0 sink\n", "WAIT -1 5\n", "WAIT 0 99999999999999999999\n",
		"SEND 0 1 1 x\n", "MODE 0 echo\n", strings.Repeat("A", 4*MaxLine) + "\n", "\x00\xff\xfe\n",
		"NODES tcp 1 default\nSEND 0 10 1 127.0.0.1:1\n", "NODES tcp 1 default\nSEND 0 1 99999999 a\n",
	} {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.Write([]byte(in))
		c.(*net.TCPConn).CloseWrite()
		buf := make([]byte, 4*MaxLine)
		n, _ := c.Read(buf)
		if n > 0 && !strings.HasPrefix(string(buf[:n]), "ERR") && !strings.HasPrefix(string(buf[:n]), "OK") {
			t.Errorf("%q: reply %q", in, buf[:n])
		}
		c.Close()
	}
	cl, err := dialControl(context.Background(), s.Addr().String())
	if err != nil {
		t.Fatalf("after bad input: %v", err)
	}
	cl.close()
}

func TestMedian(t *testing.T) {
	r := func(rtt time.Duration, msgs int, rttErr string) Result {
		return Result{Condition: "c", Transport: "tcp", RTT50: rtt, RTT99: 2 * rtt, RTTErr: rttErr,
			Tput: []Throughput{{Size: 1, Out: bench.Rate{Msgs: msgs, Size: 1, Elapsed: time.Second}}}}
	}
	m := Median([][]Result{{r(3, 30, "")}, {r(1, 10, "")}, {r(100, 0, "boom")}, {r(2, 20, "")}})
	if len(m) != 1 || m[0].RTT50 != 2 || m[0].RTT99 != 4 || m[0].RTTErr != "" || m[0].Tput[0].Out.Msgs != 20 {
		t.Errorf("median: %+v", m)
	}
	m = Median([][]Result{{r(0, 0, "boom")}, {r(0, 0, "bang")}})
	if m[0].RTTErr != "boom" {
		t.Errorf("all rounds failed: error %q, want the first", m[0].RTTErr)
	}
}
