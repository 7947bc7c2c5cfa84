package bench_test

import (
	"fmt"
	"testing"

	"github.com/peerkit/peerkit/bench"
)

// BenchmarkThroughputBothWays streams 64-byte messages both ways at once:
// each end sends b.N while it receives the other's. A receiver hears
// messages between its own sends, so this is where answering sends
// (written directly, without the writer's batching) could cost most.
// ns/op is per message each way.
func BenchmarkThroughputBothWays(b *testing.B) {
	for _, name := range []string{bench.TCP, bench.Memory} {
		for _, layer := range []string{"cluster", "raw"} {
			b.Run(fmt.Sprintf("transport=%s/size=64B/layer=%s", name, layer), func(b *testing.B) {
				p, err := newPair(name, layer)
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				b.ResetTimer()
				errs := make(chan error, 4)
				for _, ends := range [][2]bench.Endpoint{{p.A, p.B}, {p.B, p.A}} {
					from, to := ends[0], ends[1]
					go func() {
						payload := make([]byte, 64)
						var err error
						for i := 0; i < b.N && err == nil; i++ {
							err = from.Send(payload)
						}
						if err == nil {
							err = from.Send(nil)
						}
						if err == nil {
							err = from.Flush()
						}
						errs <- err
					}()
					go func() {
						for {
							k, err := to.Recv()
							if err != nil || k == 0 {
								errs <- err
								return
							}
						}
					}()
				}
				for range 4 {
					if err := <-errs; err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
