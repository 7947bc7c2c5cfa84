package cluster

import (
	"math/rand/v2"
	"time"
)

// backoff returns the wait before reconnect attempt number attempt (0 for
// the first): base doubled per attempt, capped at max, with "equal jitter"
// (a uniformly random point in the upper half), so that peers that lost
// each other at the same moment do not redial in lockstep.
func backoff(base, max time.Duration, attempt int) time.Duration {
	d := base
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max || d <= 0 {
		d = max
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
