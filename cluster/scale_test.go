package cluster

import (
	"flag"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

var scaleRace = flag.Bool("scale.race", false, "run TestScale256ChainConvergesToFullMesh under -race too")

// A chain of Adds among 256 nodes converges to a full mesh (65280
// directed links). The virtual time it takes is reported, not asserted
// beyond a generous bound.
func TestScale256ChainConvergesToFullMesh(t *testing.T) {
	if testing.Short() {
		t.Skip("256 nodes: skipped with -short")
	}
	if raceEnabled && !*scaleRace {
		// About a minute of CPU without the race detector, several with
		// it: 32640 handshakes, each compiling gob types for new streams.
		t.Skip("256 nodes: skipped under -race (pass -scale.race to run it)")
	}
	const size = 256
	realStart := time.Now()
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithSeed(256))
		defer nw.Close()
		nw.SetLatency(time.Millisecond, time.Millisecond)
		nodes := make([]*Node, size)
		for i := range nodes {
			// Heartbeats at the defaults' pace: 65280 link ends beat.
			nodes[i] = newMemNode(t, nw, fmt.Sprintf("node%03d:1", i),
				WithHealthyInterval(time.Second), WithNetworkTimeout(5*time.Second))
		}
		start := time.Now()
		for i := 1; i < size; i++ {
			if err := nodes[i].Add(nodes[i-1].AdvertiseAddr()); err != nil {
				t.Fatalf("node%d.Add: %v", i, err)
			}
		}
		adds := time.Since(start)
		links := func() (c int) {
			for _, n := range nodes {
				c += len(n.Remotes())
			}
			return c
		}
		for i := 0; !fullMesh(nodes); i++ {
			if i%10 == 0 {
				t.Logf("%v: %d of %d directed links", time.Since(start), links(), size*(size-1))
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("no full mesh after %v: %d of %d links; %s", time.Since(start), links(), size*(size-1), meshReport(nodes[:8]))
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("256-node chain: %d Adds took %v (virtual); full mesh %v (virtual) after the first Add, %v after the last",
			size-1, adds, time.Since(start), time.Since(start)-adds)
		// It stays a full mesh: nobody is removed by the load of the join.
		time.Sleep(3 * testTimeout)
		if !fullMesh(nodes) {
			t.Fatalf("mesh fell apart after converging: %s", meshReport(nodes[:8]))
		}
	})
	t.Logf("256-node convergence test: %v real", time.Since(realStart).Round(time.Millisecond))
}

// How long the others take to notice a killed node (a crash: its conns
// reset at once) and a black-holed one (silent: only the network timeout
// tells), in virtual time, in a 32-node full mesh.
func TestScaleDetectionTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithSeed(32))
		defer nw.Close()
		nw.SetLatency(time.Millisecond, time.Millisecond)
		nodes := memCluster(t, nw, 32)
		for i := 1; i < len(nodes); i++ {
			if err := nodes[i].Add(nodes[0].AdvertiseAddr()); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, 10*time.Second, func() bool { return fullMesh(nodes) }, func() string { return meshReport(nodes) })
		synctest.Wait()

		// detect runs fault on victim and returns, for every other node,
		// the virtual time until it removed the victim.
		dead := map[*Node]bool{}
		detect := func(victim *Node, fault func()) (first, last time.Duration) {
			type seen struct {
				by string
				at time.Time
			}
			ch := make(chan seen, len(nodes))
			watchers := 0
			for _, n := range nodes {
				if n == victim || dead[n] {
					continue
				}
				watchers++
				n.RemoteRemoved(func(r Remote) {
					if r.Addr() == victim.AdvertiseAddr() {
						ch <- seen{n.AdvertiseAddr(), time.Now()}
					}
				})
			}
			start := time.Now()
			fault()
			first = time.Hour
			for range watchers {
				s := <-ch
				d := s.at.Sub(start)
				first, last = min(first, d), max(last, d)
			}
			return first, last
		}
		kf, kl := detect(nodes[5], func() {
			nw.Kill(nodes[5].AdvertiseAddr())
			nodes[5].close(false)
		})
		dead[nodes[5]] = true
		t.Logf("killed node removed by all 31 others after %v to %v (virtual)", kf, kl)
		if kl >= testHealthy {
			t.Errorf("a crash took %v to be noticed by everyone; closed conns must be seen at once", kl)
		}
		bf, bl := detect(nodes[9], func() { nw.BlackHole(nodes[9].AdvertiseAddr()) })
		t.Logf("black-holed node removed by all 30 others after %v to %v (virtual); network timeout %v, heartbeat %v",
			bf, bl, testTimeout, testHealthy)
		// The last frame before the silence may be up to two heartbeat
		// intervals old (a tick that follows a gossip write sends no
		// heartbeat).
		if bf < testTimeout-2*testHealthy || bl > testTimeout+testHealthy {
			t.Errorf("silent node removed after %v to %v, want about the network timeout %v", bf, bl, testTimeout)
		}
	})
}
