package bench_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/peerkit/peerkit/bench"
)

// Names follow benchstat's key=value convention, so that for example
//
//	benchstat -col /layer new.txt
//
// puts the cluster layer beside its raw baseline.

func BenchmarkThroughput(b *testing.B) {
	for _, name := range append(bench.Transports(), bench.References()...) {
		b.Run("transport="+name, func(b *testing.B) {
			layers := []string{"cluster", "handler", "raw"}
			switch {
			case bench.IsReference(name):
				layers = []string{"raw"}
			case name == bench.TCP || name == bench.Memory:
				layers = append(layers, "copy") // the Inbox's floor
			}
			pairs := map[string]*bench.Pair{}
			for _, layer := range layers {
				p, err := newPair(name, layer)
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				pairs[layer] = p
			}
			for _, size := range bench.Sizes() {
				for _, layer := range layers {
					b.Run(fmt.Sprintf("size=%s/layer=%s", bench.SizeName(size), layer), func(b *testing.B) {
						b.SetBytes(int64(size))
						b.ReportAllocs()
						r, err := bench.Throughput(pairs[layer], size, b.N)
						if err != nil {
							b.Fatal(err)
						}
						b.ReportMetric(r.MsgsPerSec(), "msgs/s")
					})
				}
			}
		})
	}
}

func newPair(name, layer string) (*bench.Pair, error) {
	switch layer {
	case "raw":
		return bench.RawPair(name)
	case "handler":
		return bench.HandlerPair(name)
	case "copy":
		return bench.CopyingHandlerPair(name)
	case "handoff":
		return bench.HandoffPair(name)
	}
	return bench.ClusterPair(name)
}

func BenchmarkRoundTrip(b *testing.B) {
	for _, name := range append(bench.Transports(), bench.References()...) {
		layers := []string{"cluster", "handoff", "raw"}
		if bench.IsReference(name) {
			layers = []string{"raw"}
		}
		sizes := []int{64}
		if name == bench.TCP || name == bench.Memory {
			sizes = append(sizes, 64<<10) // a large payload: Send writes it directly
		}
		for _, size := range sizes {
			for _, layer := range layers {
				b.Run(fmt.Sprintf("transport=%s/size=%s/layer=%s", name, bench.SizeName(size), layer), func(b *testing.B) {
					benchRoundTrip(b, name, layer, size)
				})
			}
		}
	}
}

func benchRoundTrip(b *testing.B, name, layer string, size int) {
	p, err := newPair(name, layer)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	b.ResetTimer()
	rtts, err := bench.RoundTrips(p, size, b.N)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(bench.Percentile(rtts, 0.5)), "p50-ns")
	b.ReportMetric(float64(bench.Percentile(rtts, 0.99)), "p99-ns")
}

func BenchmarkChainToMesh(b *testing.B) {
	for _, name := range []string{bench.TCP, bench.Memory} {
		for _, n := range []int{8, 32, 64} {
			b.Run(fmt.Sprintf("transport=%s/nodes=%d", name, n), func(b *testing.B) {
				var total time.Duration
				for b.Loop() {
					d, err := bench.ChainToMesh(name, n)
					if err != nil {
						b.Fatal(err)
					}
					total += d
				}
				b.ReportMetric(float64(total)/float64(b.N), "ns/mesh")
			})
		}
	}
}

func BenchmarkDetectDeath(b *testing.B) {
	cases := []struct{ kind, transport string }{
		{bench.Killed, bench.TCP},
		{bench.Killed, bench.Memory},
		{bench.BlackHole, bench.Memory},
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("kind=%s/transport=%s/nodes=4", c.kind, c.transport), func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				d, err := bench.DetectDeath(c.transport, c.kind, 4)
				if err != nil {
					b.Fatal(err)
				}
				total += d
			}
			b.ReportMetric(float64(total)/float64(b.N), "ns/removal")
		})
	}
}

func BenchmarkAllocs(b *testing.B) {
	for _, name := range []string{bench.TCP, bench.Memory} {
		for _, size := range bench.Sizes() {
			b.Run(fmt.Sprintf("transport=%s/size=%s", name, bench.SizeName(size)), func(b *testing.B) {
				n := 20_000 // the pools' cold start is noise of about 1000 allocations
				if size > 1<<10 {
					n = 4_000
				}
				a, err := bench.MeasureAllocs(name, size, max(b.N, n))
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(a.SendAllocs, "send-allocs/msg")
				b.ReportMetric(a.SendBytes, "send-B/msg")
				b.ReportMetric(a.RecvAllocs, "recv-allocs/msg")
				b.ReportMetric(a.RecvBytes, "recv-B/msg")
				b.ReportMetric(a.SendTransportAllocs, "send-conn-allocs/msg")
				b.ReportMetric(a.RecvTransportAllocs, "recv-conn-allocs/msg")
			})
		}
	}
}

func BenchmarkIdleRemote(b *testing.B) {
	for _, name := range bench.Transports() {
		b.Run(fmt.Sprintf("transport=%s/nodes=17", name), func(b *testing.B) {
			var bytes, gs float64
			for b.Loop() {
				r, err := bench.MeasureIdle(name, 16)
				if err != nil {
					b.Fatal(err)
				}
				bytes += r.BytesPerRemote
				gs += r.GoroutinesPerRemote
			}
			b.ReportMetric(bytes/float64(b.N), "B/remote")
			b.ReportMetric(gs/float64(b.N), "goroutines/remote")
		})
	}
}

// BenchmarkLinkSetup times one link from a new node's Add to its first
// message delivered (ns/op is one link; making and closing the new node
// are not timed).
func BenchmarkLinkSetup(b *testing.B) {
	for _, name := range bench.Transports() {
		b.Run("transport="+name, func(b *testing.B) {
			ds, err := bench.LinkSetup(name, b.N)
			if err != nil {
				b.Fatal(err)
			}
			var sum time.Duration
			for _, d := range ds {
				sum += d
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(sum)/float64(len(ds)), "setup-ns/op")
			b.ReportMetric(float64(bench.Percentile(ds, 0.5)), "p50-ns")
		})
	}
}
