package chaostest

import (
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"

	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/transport/memory"
)

// App is one node's application, as Test.Start built it.
type App interface {
	// Node returns the cluster node the application runs on. The
	// harness joins it to the others, calls CloseRemote on it, and
	// records its membership events in the trace.
	Node() *cluster.Node
	// Close stops the application and its node, and returns once their
	// goroutines have stopped. The harness calls it for a Leave, for a
	// Crash (once the network has killed the address, so that no goodbye
	// gets out), and for every live node at the end of a run.
	Close() error
}

// Test is what Run and Find run on every seed.
type Test[A App] struct {
	// Start starts one node's application at h.Addr: it calls
	// cluster.New(h.Addr, h.Options...), adding options of its own if it
	// likes, and starts whatever the application runs beside the node.
	// It runs once per node and again for every restart. An error fails
	// the seed.
	Start func(h *Host) (A, error)
	// Invariants are checked as each one's At says, on the live
	// applications; each error a check returns is a violation.
	Invariants []Invariant[A]
}

// When says at which points of a run an invariant is checked.
type When uint8

// The points at which invariants are checked.
const (
	// Settled checks once, when the settle time (WithSettle; two network
	// timeouts by default) has passed since the final heal.
	Settled When = iota
	// EveryStep checks after every fault of the schedule too: a property
	// that must hold whatever the network does.
	EveryStep
)

// Invariant is a property of the running applications.
type Invariant[A App] struct {
	// Name says what the invariant is; violations quote it.
	Name string
	// At says when Check runs (Settled, the zero value, or EveryStep).
	At When
	// Check gets the live applications in address order and returns an
	// error if the property does not hold. Checks run in order, on the
	// goroutine that runs the schedule, inside the run's synctest bubble:
	// a check may wait (time.Sleep, synctest.Wait) for in-flight work,
	// and later checks see what it did.
	Check func(apps []A) error
}

// Host is what Start gets to start one node: where it runs and how.
type Host struct {
	// Addr is the node's address on the network ("n03:1").
	Addr string
	// Network is the memory network every node of the run shares.
	Network *memory.Network
	// Options are the node's cluster options: the network as its
	// transport and the run's timing (WithTimeouts), and a logger with
	// -chaostest.log.
	Options []cluster.Option
	// Seed is the run's seed, for an application that draws random
	// numbers of its own.
	Seed int64
	// Incarnation counts the restarts at Addr: 0 for the first start.
	Incarnation int

	run *run
}

// Logf adds a line to the run's trace. It may be called from any
// goroutine.
func (h *Host) Logf(format string, args ...any) { h.run.logf(format, args...) }

// Errorf records a violation: the seed fails, and the run goes on so that
// the trace shows what followed. It may be called from any goroutine.
func (h *Host) Errorf(format string, args ...any) { h.run.violation(format, args...) }

// Run runs test on the seeds the options and flags choose, each in its own
// subtest (seeds/seed=N, in parallel unless WithSequential) and its own
// synctest bubble, and fails t with a seed's report (Result.Report: the
// seed, the command that replays it, the violations, the schedule and the
// trace) for every seed that found a violation. It returns every seed's
// result in seed order, once all have run. Invalid options or a Test
// without Start fail t at once.
func Run[A App](t *testing.T, test Test[A], opts ...Option) []*Result {
	t.Helper()
	pc, _, _, _ := runtime.Caller(1)
	c, err := prepare(&test, opts, true)
	if err != nil {
		t.Fatal(err)
	}
	replay := replayCommand(t.Name(), pc)
	seeds := c.seedList()
	results := make([]*Result, len(seeds))
	t.Run("seeds", func(t *testing.T) {
		for i, seed := range seeds {
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				if !c.sequential {
					t.Parallel()
				}
				synctest.Test(t, func(*testing.T) { results[i] = runSeed(&test, &c, seed, replay) })
				switch res := results[i]; {
				case res == nil:
					t.Errorf("chaostest: seed %d did not finish", seed)
				case res.Failed():
					t.Error(res.Report())
				case c.trace:
					t.Log(res.Report())
				}
			})
		}
	})
	return results
}

// Find runs test on the seeds the options choose, one after another, each
// in its own synctest bubble, and returns the result of the first seed
// that found a violation, or nil if none did. It fails t only for invalid
// options or a Test without Start: what the seeds find is for the caller
// to judge, as a test that plants a bug to show it caught does. Of the
// flags, -chaostest.seed (replay that seed only), -chaostest.trace and
// -chaostest.log apply; -chaostest.seeds and -short, which say how widely
// Run explores, do not change where Find searches.
func Find[A App](t *testing.T, test Test[A], opts ...Option) *Result {
	t.Helper()
	pc, _, _, _ := runtime.Caller(1)
	c, err := prepare(&test, opts, false)
	if err != nil {
		t.Fatal(err)
	}
	replay := replayCommand(t.Name(), pc)
	for _, seed := range c.seedList() {
		var res *Result
		synctest.Test(t, func(*testing.T) { res = runSeed(&test, &c, seed, replay) })
		if c.trace {
			t.Log(res.Report())
		}
		if res.Failed() {
			return res
		}
	}
	return nil
}

// prepare checks the test and builds the configuration: the options, then
// the flags (see applyFlags for breadth).
func prepare[A App](test *Test[A], opts []Option, breadth bool) (config, error) {
	if test.Start == nil {
		return config{}, fmt.Errorf("%w: Test.Start is nil", ErrInvalidTest)
	}
	c, err := newConfig(opts)
	if err != nil {
		return config{}, err
	}
	c.applyFlags(breadth)
	return c, nil
}
