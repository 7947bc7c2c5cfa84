package chaostest_test

import (
	"fmt"

	"github.com/peerkit/peerkit/chaostest"
)

// A seed's schedule is a plain value: what Run will do, and when, to the
// nodes of one seed. The same seed and options always draw the same one.
func ExampleNewSchedule() {
	s, err := chaostest.NewSchedule(4, chaostest.WithNodes(3, 4), chaostest.WithSteps(6, 6))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s)
	// Output:
	// seed 4: 4 nodes n00:1 .. n03:1
	//   setup   latency 3ms jitter 4ms
	//   setup   join n01:1 via n00:1
	//   setup   join n02:1 via n01:1
	//   setup   join n03:1 via n00:1
	//    0.284s partition [n00:1 n01:1] | [n02:1 n03:1]
	//    0.522s crash n03:1
	//    0.727s blackhole n03:1
	//    1.120s crash n01:1
	//    1.176s restart n01:1, joining via n02:1
	//    1.404s crash n00:1
	//    1.458s closeremote n02:1 -> n00:1
	//    1.502s heal everything
	//    2.502s check the invariants
}
