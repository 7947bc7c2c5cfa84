package chaostest

import (
	"flag"
	"fmt"
	"testing"
	"time"
)

// The flags, registered on the test binary's command line. A flag given
// on the command line overrides the test's options.
var (
	flagSeeds = flag.Int("chaostest.seeds", 0, "chaostest: run seeds 1..N (0: the test's WithSeeds, or 100)")
	flagSeed  = flag.Int64("chaostest.seed", -1, "chaostest: run only this seed (replay a failure)")
	flagTrace = flag.Bool("chaostest.trace", false, "chaostest: print every seed's schedule and trace, not only a failure's")
	flagLog   = flag.Bool("chaostest.log", false, "chaostest: add the nodes' debug logs to a failure's report")
)

// Defaults: how many seeds Run explores, and the nodes' timing, short so
// that a schedule's seconds of faults stay few in virtual time.
const (
	DefaultSeeds           = 100
	DefaultHealthyInterval = 100 * time.Millisecond
	DefaultNetworkTimeout  = 500 * time.Millisecond
)

// shortSeeds caps the number of seeds under go test -short.
const shortSeeds = 20

// An Option configures Run, Find and NewSchedule.
type Option func(*config) error

type config struct {
	seeds       int
	seed        int64 // run only this one; -1: seeds 1..seeds
	trace, logs bool
	sequential  bool
	nodesMin    int // 0: the default distribution
	nodesMax    int
	stepsMin    int
	stepsMax    int
	healthy     time.Duration
	timeout     time.Duration
	settleTime  time.Duration // 0: two network timeouts
	excluded    map[Kind]bool
}

func defaultConfig() config {
	return config{
		seeds: DefaultSeeds, seed: -1, stepsMin: 5, stepsMax: 10,
		healthy: DefaultHealthyInterval, timeout: DefaultNetworkTimeout,
		excluded: map[Kind]bool{},
	}
}

// newConfig applies the options in order (the last wins) and validates
// the result. It does not read the flags.
func newConfig(opts []Option) (config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return config{}, err
		}
	}
	if c.healthy >= c.timeout {
		return config{}, fmt.Errorf("%w: WithTimeouts(%v, %v): the healthy interval must be shorter than the network timeout", ErrInvalidOption, c.healthy, c.timeout)
	}
	if c.totalWeight() == 0 {
		return config{}, fmt.Errorf("%w: WithFaults/WithoutFaults leave no fault to draw", ErrInvalidOption)
	}
	return c, nil
}

// applyFlags lets the flags given on the command line override the
// options. With breadth, -chaostest.seeds and -short, which say how many
// seeds to explore, apply too.
func (c *config) applyFlags(breadth bool) {
	if !flag.Parsed() {
		return
	}
	if *flagSeeds > 0 && breadth {
		c.seeds = *flagSeeds
	}
	if *flagSeed >= 0 {
		c.seed = *flagSeed
	}
	c.trace = c.trace || *flagTrace
	c.logs = c.logs || *flagLog
	if breadth && testing.Short() && c.seed < 0 {
		c.seeds = min(c.seeds, shortSeeds)
	}
}

// seedList returns the seeds to run, in order.
func (c *config) seedList() []int64 {
	if c.seed >= 0 {
		return []int64{c.seed}
	}
	out := make([]int64, c.seeds)
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}

func (c *config) settle() time.Duration {
	if c.settleTime > 0 {
		return c.settleTime
	}
	return 2 * c.timeout
}

func (c *config) allowed(k Kind) bool { return k >= Partition && k < Join && !c.excluded[k] }

func (c *config) totalWeight() int {
	n := 0
	for _, k := range Faults() {
		if c.allowed(k) {
			n += weights[k]
		}
	}
	return n
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidOption, fmt.Sprintf(format, args...))
}

// WithSeeds runs seeds 1 to n (default DefaultSeeds; -chaostest.seeds
// overrides it, and go test -short caps it at 20).
func WithSeeds(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return invalid("WithSeeds(%d): need at least one seed", n)
		}
		c.seeds = n
		return nil
	}
}

// WithSeed runs only the given seed, to replay a failure
// (-chaostest.seed overrides it).
func WithSeed(seed int64) Option {
	return func(c *config) error {
		if seed < 0 {
			return invalid("WithSeed(%d): seeds are not negative", seed)
		}
		c.seed = seed
		return nil
	}
}

// WithTrace logs every seed's schedule and trace, not only a failure's
// (as -chaostest.trace does).
func WithTrace(on bool) Option {
	return func(c *config) error { c.trace = on; return nil }
}

// WithLogs adds the nodes' debug logs to a failure's report (as
// -chaostest.log does). The nodes' options then carry a logger.
func WithLogs(on bool) Option {
	return func(c *config) error { c.logs = on; return nil }
}

// WithSequential runs the seeds one after another instead of as parallel
// subtests, for applications that share state between nodes of
// different seeds.
func WithSequential() Option {
	return func(c *config) error { c.sequential = true; return nil }
}

// WithNodes draws each seed's number of nodes uniformly from lo to hi.
// Without it, most seeds have 8 to 12 nodes and one in 16 has 17 to 32.
func WithNodes(lo, hi int) Option {
	return func(c *config) error {
		if lo < 1 || hi < lo || hi > 1000 {
			return invalid("WithNodes(%d, %d): need 1 <= lo <= hi <= 1000", lo, hi)
		}
		c.nodesMin, c.nodesMax = lo, hi
		return nil
	}
}

// WithSteps draws each seed's number of faults uniformly from lo to hi
// (default 5 to 10; a fault that cannot apply when drawn is skipped).
func WithSteps(lo, hi int) Option {
	return func(c *config) error {
		if lo < 0 || hi < lo {
			return invalid("WithSteps(%d, %d): need 0 <= lo <= hi", lo, hi)
		}
		c.stepsMin, c.stepsMax = lo, hi
		return nil
	}
}

// WithTimeouts sets the nodes' healthy interval and network timeout
// (default DefaultHealthyInterval and DefaultNetworkTimeout). The
// reconnect interval is the healthy interval, capped at half the timeout;
// the gaps between faults scale with the timeout.
func WithTimeouts(healthy, timeout time.Duration) Option {
	return func(c *config) error {
		if healthy <= 0 || timeout <= 0 {
			return invalid("WithTimeouts(%v, %v): both must be positive", healthy, timeout)
		}
		c.healthy, c.timeout = healthy, timeout
		return nil
	}
}

// WithSettle sets how long after the final heal the Settled invariants
// are checked (default two network timeouts).
func WithSettle(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("WithSettle(%v): must be positive", d)
		}
		c.settleTime = d
		return nil
	}
}

// WithFaults draws only the given kinds of fault. A Crash restarts
// quickly only if Restart is among them.
func WithFaults(kinds ...Kind) Option {
	return func(c *config) error {
		keep := map[Kind]bool{}
		for _, k := range kinds {
			if !validFault(k) {
				return invalid("WithFaults: %v is not a fault", k)
			}
			keep[k] = true
		}
		for _, k := range Faults() {
			c.excluded[k] = !keep[k]
		}
		return nil
	}
}

// WithoutFaults never draws the given kinds of fault: for instance
// CloseRemote, whose effect on the membership outlives the heal, for an
// invariant that needs every live node to know every other.
func WithoutFaults(kinds ...Kind) Option {
	return func(c *config) error {
		for _, k := range kinds {
			if !validFault(k) {
				return invalid("WithoutFaults: %v is not a fault", k)
			}
			c.excluded[k] = true
		}
		return nil
	}
}

func validFault(k Kind) bool { return k >= Partition && k < Join }
