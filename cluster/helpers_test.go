package cluster

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

// Test timing: short intervals keep virtual-time tests readable.
const (
	testHealthy = 100 * time.Millisecond
	testTimeout = 500 * time.Millisecond
)

func testOpts(extra ...Option) []Option {
	if os.Getenv("PEERKIT_TEST_LOG") != "" {
		extra = append([]Option{WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))}, extra...)
	}
	return append([]Option{
		WithHealthyInterval(testHealthy),
		WithNetworkTimeout(testTimeout),
		WithReconnectInterval(100 * time.Millisecond),
		WithMaxReconnectInterval(time.Second),
	}, extra...)
}

// newMemNode starts a node on the memory network and closes it at cleanup.
func newMemNode(t testing.TB, nw *memory.Network, addr string, opts ...Option) *Node {
	t.Helper()
	n, err := New(addr, append(testOpts(WithTransport(nw)), opts...)...)
	if err != nil {
		t.Fatalf("New(%s): %v", addr, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// eventually waits, in whatever time the test runs in, until cond holds,
// for at most d; it fails the test with what describe says otherwise.
func eventually(t testing.TB, d time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %s", d, describe())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func addrs(rs []Remote) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Addr()
	}
	return out
}

// fullMesh reports whether every node knows exactly all the others.
func fullMesh(nodes []*Node) bool {
	for _, n := range nodes {
		want := make([]string, 0, len(nodes)-1)
		for _, m := range nodes {
			if m != n {
				want = append(want, m.AdvertiseAddr())
			}
		}
		slices.Sort(want)
		if !slices.Equal(addrs(n.Remotes()), want) {
			return false
		}
	}
	return true
}

func meshReport(nodes []*Node) string {
	var b bytes.Buffer
	for _, n := range nodes {
		fmt.Fprintf(&b, "\n  %s knows %d: %v", n.AdvertiseAddr(), len(n.Remotes()), addrs(n.Remotes()))
	}
	return b.String()
}

// recorder collects a node's membership events in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func record(n *Node) *recorder {
	r := &recorder{}
	n.RemoteAdded(func(x Remote) { r.add(fmt.Sprintf("+%s#%x", x.Addr(), x.Instance())) })
	n.RemoteRemoved(func(x Remote) { r.add(fmt.Sprintf("-%s#%x", x.Addr(), x.Instance())) })
	return r
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// logBuffer captures a node's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
