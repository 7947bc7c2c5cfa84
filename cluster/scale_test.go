package cluster

import (
	"flag"
	"fmt"
	"slices"
	"syscall"
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
		// Half a minute of CPU without the race detector, several with
		// it: 32640 handshakes and 65280 link ends.
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

// BenchmarkScale512 runs a 512-node memory cluster in virtual time: a
// chain of Adds to a full mesh (261632 directed links), then a crash
// (Network.Kill) and a black hole that every other node must detect. It
// reports the virtual times, the real time and the process's peak
// resident memory; nothing is asserted about them. Run it alone:
//
//	go test -run '^$' -bench Scale512 -benchtime 1x ./cluster
func BenchmarkScale512(b *testing.B) {
	const size = 512
	for range b.N {
		realStart := time.Now()
		var mesh, killed, silent time.Duration
		var failure string
		inBubble(b, func() {
			nw := memory.NewNetwork(memory.WithSeed(512))
			defer nw.Close()
			nw.SetLatency(time.Millisecond, time.Millisecond)
			nodes := make([]*Node, 0, size)
			defer func() {
				for _, n := range nodes {
					n.Close()
				}
			}()
			for i := range size {
				n, err := New(fmt.Sprintf("node%03d:1", i), append(testOpts(WithTransport(nw)),
					WithHealthyInterval(time.Second), WithNetworkTimeout(5*time.Second))...)
				if err != nil {
					failure = err.Error()
					return
				}
				nodes = append(nodes, n)
			}
			start := time.Now()
			for i := 1; i < size; i++ {
				if err := nodes[i].Add(nodes[i-1].AdvertiseAddr()); err != nil {
					failure = fmt.Sprintf("node%d.Add: %v", i, err)
					return
				}
			}
			for !fullMesh(nodes) {
				if time.Since(start) > time.Minute {
					failure = "no full mesh after a minute (virtual): " + meshReport(nodes[:4])
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			mesh = time.Since(start)

			// detect applies fault to victim and waits until every node
			// but the victims has removed it.
			victims := []int{7, 300}
			detect := func(victim int, fault func()) time.Duration {
				start := time.Now()
				fault()
				addr := nodes[victim].AdvertiseAddr()
				for {
					left := 0
					for i, n := range nodes {
						if !slices.Contains(victims, i) && slices.Contains(addrs(n.Remotes()), addr) {
							left++
						}
					}
					if left == 0 {
						return time.Since(start)
					}
					if time.Since(start) > time.Minute {
						failure = fmt.Sprintf("%d nodes still list %s a minute after its fault", left, addr)
						return 0
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			killed = detect(victims[0], func() {
				nw.Kill(nodes[victims[0]].AdvertiseAddr())
				nodes[victims[0]].close(false)
			})
			if failure == "" {
				silent = detect(victims[1], func() { nw.BlackHole(nodes[victims[1]].AdvertiseAddr()) })
			}
		})
		if failure != "" {
			b.Fatal(failure)
		}
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		b.ReportMetric(mesh.Seconds(), "mesh-virtual-s")
		b.ReportMetric(killed.Seconds(), "kill-detect-virtual-s")
		b.ReportMetric(silent.Seconds(), "blackhole-detect-virtual-s")
		b.ReportMetric(time.Since(realStart).Seconds(), "real-s")
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
	}
}
