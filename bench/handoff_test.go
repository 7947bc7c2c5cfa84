package bench_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/peerkit/peerkit/bench"
)

// The handoff pair's reading goroutines stop with it, and a round trip
// through it carries the payload's length both ways.
func TestHandoffPairRoundTripsAndStops(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, name := range []string{bench.TCP, bench.Memory} {
		p, err := bench.HandoffPair(name)
		if err != nil {
			t.Fatal(err)
		}
		rtts, err := bench.RoundTrips(p, 100, 50)
		p.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(rtts) != 50 {
			t.Fatalf("%s: %d round trips, want 50", name, len(rtts))
		}
	}
	if _, err := bench.HandoffPair("ref-tcp"); err == nil {
		t.Fatal("a handoff pair of a reference baseline: no error")
	}
}
