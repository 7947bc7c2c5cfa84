package cluster

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/mux"
	"github.com/peerkit/peerkit/transport/quic"
	"github.com/peerkit/peerkit/transport/tcp"
)

// soakFor runs the soak test for longer: go test -run TestSoak -soak=30m
// ./cluster (with -timeout above it). The short form, run by default, is a
// few cycles per transport.
var soakFor = flag.Duration("soak", 0, "run TestSoak for this long, cycling through the transports (0: a short form)")

// soakIdle is the idle timeout of the hub's transport sessions in the soak
// test: short, so that what a cycle leaves idle is released before the
// cycle's resources are counted.
const soakIdle = 200 * time.Millisecond

// Bounds on how far a node's resources may stand above their baseline
// after a cycle has ended and settled.
const (
	soakMaxFDs        = 2
	soakMaxGoroutines = 8
	soakMaxHeap       = 4 << 20
)

type soakTransport struct {
	name string
	make func(t *testing.T) (transport.Transport, error)
}

func soakTransports() []soakTransport {
	os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	return []soakTransport{
		{"tcp", func(t *testing.T) (transport.Transport, error) { return tcp.New() }},
		{"mux", func(t *testing.T) (transport.Transport, error) { return mux.New(mux.WithIdleConnTimeout(soakIdle)) }},
		{"quic", func(t *testing.T) (transport.Transport, error) {
			return quic.New(tlsConfig(t), quic.WithIdleConnTimeout(soakIdle))
		}},
	}
}

// pooled reports how many dialled sessions (mux) or connections (quic) tr
// holds; 0 for a transport without a pool.
func pooled(tr transport.Transport) int {
	switch p := tr.(type) {
	case interface{ Sessions() int }:
		return p.Sessions()
	case interface{ Connections() int }:
		return p.Connections()
	}
	return 0
}

// resources is what a node holds that a leak would grow.
type resources struct {
	fds, goroutines int
	heap            uint64
}

func (r resources) String() string {
	return fmt.Sprintf("%d fds, %d goroutines, %.1f MiB live heap", r.fds, r.goroutines, float64(r.heap)/(1<<20))
}

func measure(t testing.TB) resources {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("soak: cannot count descriptors: %v", err)
	}
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return resources{fds: len(fds), goroutines: runtime.NumGoroutine(), heap: m.HeapAlloc}
}

func (r resources) within(base resources) bool {
	return r.fds <= base.fds+soakMaxFDs && r.goroutines <= base.goroutines+soakMaxGoroutines && r.heap <= base.heap+soakMaxHeap
}

// A node lives through many cycles of peers joining, exchanging messages,
// crashing, restarting on the same address, being let go with CloseRemote
// and leaving with Close; after each cycle its descriptors, goroutines and
// live heap are back within a small bound of what they were after the
// first. Every cycle brings peers on new addresses, so that anything kept
// per address ever dialled grows; one peer stays across cycles and is let
// go and added again, so that a transport session left open while both
// ends live would stay.
func TestSoak(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("soak: no /proc/self/fd to count descriptors")
	}
	cycles := 4
	if testing.Short() {
		cycles = 3
	}
	trs := soakTransports()
	if *soakFor == 0 {
		for _, tr := range trs {
			t.Run(tr.name, func(t *testing.T) { soak(t, tr, cycles, 0) })
		}
		return
	}
	per := *soakFor / time.Duration(len(trs))
	for _, tr := range trs {
		t.Run(tr.name, func(t *testing.T) { soak(t, tr, 0, per) })
	}
}

// soak runs cycles of churn around one hub node, for n cycles or, if n is
// 0, until d has passed.
func soak(t *testing.T, tr soakTransport, n int, d time.Duration) {
	must := mustTransport(t)
	hubTr, stayTr := must(tr.make(t)), must(tr.make(t))
	hub := soakNode(t, hubTr, "127.0.0.1:0")
	defer hub.Close()
	stay := soakNode(t, stayTr, "127.0.0.1:0")
	defer stay.Close()
	// settled: the cycle's remotes are gone, and so are the transport
	// sessions it opened, idle ones included.
	settled := func() bool {
		return len(hub.Stats().Remotes) == 0 && len(stay.Stats().Remotes) == 0 && pooled(hubTr) == 0 && pooled(stayTr) == 0
	}
	report := func() string {
		return fmt.Sprintf("hub entries %+v; staying peer's entries %+v; sessions the hub's transport holds %d, the staying peer's %d; goroutines:\n%s",
			hub.Stats().Remotes, stay.Stats().Remotes, pooled(hubTr), pooled(stayTr), goroutineSummary())
	}

	var base, worst resources
	start := time.Now()
	cycle := 0
	for ; n == 0 && time.Since(start) < d || cycle < n; cycle++ {
		soakCycle(t, tr, hub, stay)
		var now resources
		if cycle == 0 {
			// The first cycle warms up what lives as long as the process
			// (pools, the libraries' own state).
			eventually(t, 10*time.Second, func() bool {
				now = measure(t)
				return settled()
			}, report)
			base, worst = now, now
			t.Logf("baseline after the first cycle: %v", base)
			continue
		}
		eventually(t, 10*time.Second, func() bool {
			now = measure(t)
			return settled() && now.within(base)
		}, func() string {
			return fmt.Sprintf("after cycle %d: %v; baseline %v (bounds +%d fds, +%d goroutines, +%d MiB); %s",
				cycle, now, base, soakMaxFDs, soakMaxGoroutines, soakMaxHeap>>20, report())
		})
		worst.fds, worst.goroutines, worst.heap = max(worst.fds, now.fds), max(worst.goroutines, now.goroutines), max(worst.heap, now.heap)
		if d > 0 && cycle%100 == 0 {
			t.Logf("cycle %d after %v: %v", cycle, time.Since(start).Round(time.Second), now)
		}
	}
	t.Logf("%d cycles in %v; baseline %v; highest after a cycle %v", cycle, time.Since(start).Round(time.Millisecond), base, worst)
}

func soakNode(t *testing.T, tr transport.Transport, addr string) *Node {
	t.Helper()
	// Tombstones are bounded state by design (WithMaxTombstones, 4096 by
	// default, for WithTombstoneTTL): every cycle leaves some, for
	// addresses never seen again, so they expire quickly here, or the heap
	// would grow until the bound and count as a leak.
	// And a crashed peer that never comes back is redialled until the
	// attempts run out (forever by default), so they are few here: the
	// staying peer may have lost a link to the peer that crashed.
	n, err := New(addr, testOpts(WithTransport(tr), WithNetworkTimeout(2*time.Second),
		WithHealthyInterval(200*time.Millisecond), WithTombstoneTTL(time.Second), WithReconnectAttempts(3))...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// soakCycle: three new peers join the hub, and the staying peer is added
// again; messages go both ways; one peer crashes and restarts on its
// address; the hub lets one peer and the staying one go; the others leave.
func soakCycle(t *testing.T, tr soakTransport, hub, stay *Node) {
	t.Helper()
	type peerNode struct {
		n  *Node
		tr transport.Transport
	}
	// The cycle closes what it started, even if it fails (t.Cleanup would
	// keep every cycle's transports until the test ends: a leak of the
	// test's own).
	var started []peerNode
	stop := func(p peerNode, graceful bool) {
		p.n.close(graceful)
		if c, ok := p.tr.(interface{ Close() error }); ok {
			c.Close()
		}
	}
	defer func() {
		for _, p := range started {
			stop(p, false) // idempotent: most are closed already
		}
	}()
	start := func(addr string) peerNode {
		ptr, err := tr.make(t)
		if err != nil {
			t.Fatal(err)
		}
		p := peerNode{soakNode(t, ptr, addr), ptr}
		started = append(started, p)
		return p
	}
	peers := []peerNode{start("127.0.0.1:0"), start("127.0.0.1:0"), start("127.0.0.1:0")}
	for _, p := range peers {
		if err := p.n.Add(hub.AdvertiseAddr()); err != nil {
			t.Fatalf("join: %v", err)
		}
	}
	if err := hub.Add(stay.AdvertiseAddr()); err != nil {
		t.Fatalf("add the staying peer again: %v", err)
	}
	all := []*Node{hub, stay, peers[0].n, peers[1].n, peers[2].n}
	eventually(t, 10*time.Second, func() bool { return fullMesh(all) }, func() string { return meshReport(all) })

	// Messages both ways between the hub and every peer.
	const msgs = 50
	for i := range msgs {
		if err := hub.Broadcast([]byte(fmt.Sprint(i))); err != nil {
			t.Fatalf("broadcast: %v", err)
		}
	}
	for _, p := range append(peers, peerNode{n: stay}) {
		for _, r := range p.n.Remotes() {
			if r.Addr() == hub.AdvertiseAddr() {
				for i := range msgs {
					if err := p.n.Send(r, []byte(fmt.Sprint(i))); err != nil {
						t.Fatalf("send to the hub: %v", err)
					}
				}
			}
		}
	}
	drain := func(n *Node, want int) {
		timeout := time.After(10 * time.Second)
		for range want {
			select {
			case <-n.Inbox:
			case <-timeout:
				t.Fatalf("%s: messages missing", n.AdvertiseAddr())
			}
		}
	}
	drain(hub, msgs*4)
	for _, p := range peers {
		drain(p.n, msgs)
	}
	drain(stay, msgs)

	// A crash, and a restart on the same address.
	addr := peers[0].n.AdvertiseAddr()
	stop(peers[0], false)
	peers[0] = start(addr)
	if err := peers[0].n.Add(hub.AdvertiseAddr()); err != nil {
		t.Fatalf("rejoin after a restart: %v", err)
	}
	eventually(t, 10*time.Second, func() bool {
		for _, r := range hub.Remotes() {
			if r.Addr() == addr && r.Instance() == peers[0].n.Instance() {
				return true
			}
		}
		return false
	}, func() string { return meshReport([]*Node{hub}) })

	// Let go and leave.
	for _, r := range hub.Remotes() {
		if r.Addr() == peers[1].n.AdvertiseAddr() || r.Addr() == stay.AdvertiseAddr() {
			if err := hub.CloseRemote(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range peers {
		stop(p, true)
	}
	// The staying peer lets the others go too, so that it holds nothing
	// of this cycle.
	eventually(t, 10*time.Second, func() bool { return len(stay.Remotes()) == 0 && len(hub.Remotes()) == 0 },
		func() string { return meshReport([]*Node{hub, stay}) })
}

// goroutineSummary counts the running goroutines by the function each was
// started with, most first, for a failure's message.
func goroutineSummary() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	counts := map[string]int{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if i := strings.LastIndex(g, "created by "); i >= 0 {
			line, _, _ := strings.Cut(g[i+len("created by "):], "\n")
			line, _, _ = strings.Cut(line, " in goroutine")
			counts[line]++
		}
	}
	type fc struct {
		f string
		c int
	}
	var fs []fc
	for f, c := range counts {
		fs = append(fs, fc{f, c})
	}
	slices.SortFunc(fs, func(a, b fc) int { return b.c - a.c })
	var out strings.Builder
	for _, x := range fs {
		fmt.Fprintf(&out, "  %4d %s\n", x.c, x.f)
	}
	return out.String()
}
