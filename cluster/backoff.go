package cluster

import (
	"math/rand/v2"
	"time"
)

// backoff returns the wait before reconnect attempt number attempt (0 for
// the first): base doubled per attempt, capped at limit, with "equal jitter"
// (a uniformly random point in the upper half), so that peers that lost
// each other at the same moment do not redial in lockstep.
func backoff(base, limit time.Duration, attempt int) time.Duration {
	d := base
	for i := 0; i < attempt && d < limit; i++ {
		d *= 2
	}
	if d > limit || d <= 0 {
		d = limit
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
