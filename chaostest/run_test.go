package chaostest_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/peerkit/peerkit/chaostest"
	"github.com/peerkit/peerkit/cluster"
)

// plain is an application that is only a node; it counts its Close calls.
type plain struct {
	n      *cluster.Node
	closes *counter
}

func (p *plain) Node() *cluster.Node { return p.n }
func (p *plain) Close() error {
	p.closes.add(p.n.AdvertiseAddr())
	return p.n.Close()
}

// counter counts calls by key, from any goroutine.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k]++
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func startPlain(closes *counter) func(h *chaostest.Host) (*plain, error) {
	return func(h *chaostest.Host) (*plain, error) {
		n, err := cluster.New(h.Addr, h.Options...)
		if err != nil {
			return nil, err
		}
		closes.add("start")
		return &plain{n: n, closes: closes}, nil
	}
}

var small = []chaostest.Option{chaostest.WithNodes(3, 5), chaostest.WithSeeds(10), chaostest.WithSequential()}

// A failing seed's report has the seed, the replay command, the
// violation, the schedule and the trace.
func TestReport(t *testing.T) {
	res := chaostest.Find(t, chaostest.Test[*plain]{
		Start: startPlain(&counter{}),
		Invariants: []chaostest.Invariant[*plain]{{
			Name:  "never",
			Check: func([]*plain) error { return errors.New("planted") },
		}},
	}, append(small, chaostest.WithSeed(5))...)
	if res == nil || res.Seed != 5 {
		t.Fatalf("Find: %+v, want seed 5's failure", res)
	}
	report := res.Report()
	for _, want := range append([]string{
		"chaostest: seed 5 failed\n",
		"replay: go test ./chaostest -run '^TestReport$' -chaostest.seed=5\n",
		"  - never: planted\n",
		"trace (virtual time):\n",
		"--- settled; checking the invariants",
		"VIOLATION: never: planted",
	}, res.Schedule.Lines()...) {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}
}

// A Start that fails fails the seed and stops it: no invariant runs on a
// cluster that never formed, and the nodes started are closed.
func TestStartError(t *testing.T) {
	closes := &counter{}
	checked := 0
	start := startPlain(closes)
	res := chaostest.Find(t, chaostest.Test[*plain]{
		Start: func(h *chaostest.Host) (*plain, error) {
			if h.Addr == "n01:1" {
				return nil, errors.New("no room")
			}
			return start(h)
		},
		Invariants: []chaostest.Invariant[*plain]{{Check: func([]*plain) error { checked++; return nil }}},
	}, small...)
	if res == nil || res.Seed != 1 || !slices.Equal(res.Violations, []string{"Start(n01:1): no room"}) {
		t.Fatalf("Find: %+v", res)
	}
	if checked != 0 || closes.get("n00:1") != 1 {
		t.Errorf("%d checks ran, n00:1 closed %d times", checked, closes.get("n00:1"))
	}
}

// EveryStep invariants run after every step and once settled; Settled
// ones once. They get the live applications, in address order, as the
// schedule leaves them; every application started is closed once.
func TestCheckPoints(t *testing.T) {
	for seed := int64(1); seed <= 10; seed++ {
		opts := append(small, chaostest.WithSeed(seed), chaostest.WithoutFaults(chaostest.CloseRemote))
		s, err := chaostest.NewSchedule(seed, opts...)
		if err != nil {
			t.Fatal(err)
		}
		closes := &counter{}
		var every, settled int
		var live []string
		res := chaostest.Find(t, chaostest.Test[*plain]{
			Start: startPlain(closes),
			Invariants: []chaostest.Invariant[*plain]{
				{At: chaostest.EveryStep, Check: func([]*plain) error { every++; return nil }},
				{Check: func(apps []*plain) error {
					settled++
					for _, a := range apps {
						live = append(live, a.n.AdvertiseAddr())
					}
					return nil
				}},
			},
		}, opts...)
		if res != nil {
			t.Fatalf("seed %d failed:\n%s", seed, res.Report())
		}
		if every != len(s.Steps)+1 || settled != 1 {
			t.Errorf("seed %d: EveryStep checked %d times, Settled %d, for %d steps", seed, every, settled, len(s.Steps))
		}
		if want := liveAtEnd(s); !slices.Equal(live, want) {
			t.Errorf("seed %d: the check saw %v live, the schedule leaves %v", seed, live, want)
		}
		started := closes.get("start")
		closed := 0
		for _, a := range s.Nodes {
			closed += closes.get(a)
		}
		if started != closed || started < len(s.Nodes) {
			t.Errorf("seed %d: %d started, %d closed", seed, started, closed)
		}
	}
}

func liveAtEnd(s *chaostest.Schedule) []string {
	dead := map[string]bool{}
	for _, st := range s.Steps {
		switch st.Kind {
		case chaostest.Crash, chaostest.Leave:
			dead[st.Addr] = true
		case chaostest.Restart:
			dead[st.Addr] = false
		}
	}
	return slices.DeleteFunc(slices.Clone(s.Nodes), func(a string) bool { return dead[a] })
}

// Host.Errorf fails the seed: here every restarted instance reports
// itself, so exactly the seeds whose schedule restarts a node fail.
func TestHostErrorf(t *testing.T) {
	start := startPlain(&counter{})
	test := chaostest.Test[*plain]{Start: func(h *chaostest.Host) (*plain, error) {
		if h.Incarnation > 0 {
			h.Errorf("%s restarted (incarnation %d)", h.Addr, h.Incarnation)
		}
		return start(h)
	}}
	for seed := int64(1); seed <= 10; seed++ {
		s, _ := chaostest.NewSchedule(seed, small...)
		restarts := slices.ContainsFunc(s.Steps, func(st chaostest.Step) bool { return st.Kind == chaostest.Restart })
		res := chaostest.Find(t, test, append(small, chaostest.WithSeed(seed))...)
		if (res != nil) != restarts {
			t.Errorf("seed %d: restarts %v, but Find returned %v", seed, restarts, res)
		}
		if res != nil && !strings.Contains(res.Violations[0], "restarted (incarnation 1)") {
			t.Errorf("seed %d: %v", seed, res.Violations)
		}
	}
}
