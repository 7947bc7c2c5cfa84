package cluster

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

// BenchmarkClusterLife64 measures the real time of a 64-node cluster's
// whole life inside synctest: a chain of joins to a full mesh, a partition
// into two halves until both sides have removed the other, a heal back to
// a full mesh, a crash and a restart on the same address back to a full
// mesh, and a graceful leave of every node. Nothing is asserted about
// time; the figures are reported (ns/op is real time per life; virtual-s
// the simulated time it covers).
func BenchmarkClusterLife64(b *testing.B) {
	const size = 64
	var virtual time.Duration
	for i := 0; i < b.N; i++ {
		virtual += clusterLife(b, size, int64(i))
	}
	b.ReportMetric(virtual.Seconds()/float64(b.N), "virtual-s/op")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "real-ms/op")
}

func clusterLife(b *testing.B, size int, seed int64) (virtual time.Duration) {
	b.Helper()
	ok := true
	var failure string
	inBubble(b, func() {
		nw := memory.NewNetwork(memory.WithSeed(seed))
		defer nw.Close()
		start := time.Now()
		wait := func(what string, nodes []*Node) {
			deadline := time.Now().Add(30 * time.Second)
			for !fullMesh(nodes) {
				if time.Now().After(deadline) {
					ok, failure = false, what+": "+meshReport(nodes[:4])
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		nodes := make([]*Node, size)
		addrs := make([]string, size)
		newNode := func(i int) *Node {
			n, err := New(addrs[i], testOpts(WithTransport(nw), WithMaxReconnectInterval(250*time.Millisecond))...)
			if err != nil {
				panic(err)
			}
			return n
		}
		for i := range nodes {
			addrs[i] = fmt.Sprintf("node%02d:1", i)
			nodes[i] = newNode(i)
			if i > 0 {
				if err := nodes[i].Add(addrs[i-1]); err != nil {
					panic(err)
				}
			}
		}
		wait("join", nodes)
		nw.Partition(addrs[:size/2], addrs[size/2:])
		for time.Sleep(10 * time.Millisecond); len(nodes[0].Remotes()) != size/2-1 || len(nodes[size-1].Remotes()) != size/2-1; {
			time.Sleep(10 * time.Millisecond)
		}
		nw.Heal()
		wait("heal", nodes)
		nw.Kill(addrs[7])
		nodes[7].close(false)
		nodes[7] = newNode(7)
		if err := nodes[7].Add(addrs[0]); err != nil {
			panic(err)
		}
		wait("restart", nodes)
		for _, n := range nodes {
			n.Close()
		}
		virtual = time.Since(start)
	})
	if !ok {
		b.Fatal(failure)
	}
	return virtual
}

// inBubble runs f inside a synctest bubble from a benchmark. synctest.Test
// needs a *testing.T, which a benchmark does not have, so it runs as a test
// through testing.RunTests (exported for the go command's own use).
func inBubble(b *testing.B, f func()) {
	b.Helper()
	all := func(string, string) (bool, error) { return true, nil }
	if !testing.RunTests(all, []testing.InternalTest{{
		Name: b.Name() + "/life",
		F:    func(t *testing.T) { synctest.Test(t, func(*testing.T) { f() }) },
	}}) {
		b.Fatal("the bubble failed")
	}
}
