package chaostest

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// checkSchedule replays s against a model of the cluster and returns what
// makes no sense: a step on a dead node, a restart of a live one, a
// restore of a link that is not cut, a partition that loses a node.
func checkSchedule(s *Schedule, c *config) []string {
	var bad []string
	fail := func(st Step, why string) { bad = append(bad, st.String()+": "+why) }
	live := map[string]bool{}
	for _, a := range s.Nodes {
		live[a] = true
	}
	for i, st := range s.Setup {
		switch {
		case st.Kind == Latency && i == 0:
		case st.Kind != Join:
			fail(st, "not a setup step")
		case slices.Index(s.Nodes, st.Peer) >= slices.Index(s.Nodes, st.Addr):
			fail(st, "joins through a node that starts later")
		}
	}
	cut := map[[2]string]bool{}
	holes := map[string]bool{}
	var last time.Duration
	for _, st := range s.Steps {
		if !c.allowed(st.Kind) {
			fail(st, "a kind the options exclude")
		}
		if st.At <= last && st.Kind != Restart {
			fail(st, "not after the step before")
		}
		last = st.At
		switch st.Kind {
		case Partition:
			var all []string
			for _, g := range st.Groups {
				if len(g) == 0 {
					fail(st, "an empty group")
				}
				all = append(all, g...)
			}
			slices.Sort(all)
			if !slices.Equal(all, s.Nodes) {
				fail(st, "the groups are not the nodes")
			}
		case CutLink:
			cut[[2]string{st.Addr, st.Peer}] = true
		case RestoreLink:
			if !cut[[2]string{st.Addr, st.Peer}] {
				fail(st, "the link is not cut")
			}
			delete(cut, [2]string{st.Addr, st.Peer})
		case BlackHole:
			holes[st.Addr] = true
		case Unblackhole:
			if !holes[st.Addr] {
				fail(st, "not a black hole")
			}
			delete(holes, st.Addr)
		case Crash, Leave:
			if !live[st.Addr] {
				fail(st, "the node is dead")
			}
			live[st.Addr] = false
			n := 0
			for _, v := range live {
				if v {
					n++
				}
			}
			if n < len(s.Nodes)/2 {
				fail(st, "fewer than half the nodes left alive")
			}
		case Restart:
			if live[st.Addr] {
				fail(st, "the node is alive")
			}
			if st.Peer != "" && !live[st.Peer] {
				fail(st, "joins through a dead node")
			}
			live[st.Addr] = true
		case CloseRemote:
			if !live[st.Addr] || st.Peer == st.Addr {
				fail(st, "from a dead node or to itself")
			}
		case ResetLink, LinkLatency:
			if st.Addr == st.Peer {
				fail(st, "a link to itself")
			}
		}
	}
	if s.Heal < last || s.Settle != c.settle() {
		bad = append(bad, "heal before the last step, or the wrong settle time")
	}
	return bad
}

func TestSchedules(t *testing.T) {
	for _, tc := range []struct {
		name           string
		opts           []Option
		nodesLo, hiMax int
		kinds          []Kind // every seed's steps are among these
	}{
		{name: "default", nodesLo: 8, hiMax: 32, kinds: Faults()},
		{name: "small", opts: []Option{WithNodes(2, 3)}, nodesLo: 2, hiMax: 3, kinds: Faults()},
		{name: "one node", opts: []Option{WithNodes(1, 1)}, nodesLo: 1, hiMax: 1, kinds: Faults()},
		{name: "crashes only", opts: []Option{WithFaults(Crash)}, nodesLo: 8, hiMax: 32, kinds: []Kind{Crash}},
		{name: "crashes and restarts", opts: []Option{WithFaults(Crash, Restart)}, nodesLo: 8, hiMax: 32, kinds: []Kind{Crash, Restart}},
		{name: "no CloseRemote", opts: []Option{WithoutFaults(CloseRemote), WithNodes(4, 6)}, nodesLo: 4, hiMax: 6,
			kinds: slices.DeleteFunc(Faults(), func(k Kind) bool { return k == CloseRemote })},
		{name: "many steps, slow timing", opts: []Option{WithSteps(40, 60), WithTimeouts(time.Second, 5*time.Second)}, nodesLo: 8, hiMax: 32, kinds: Faults()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newConfig(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			for seed := int64(1); seed <= 200; seed++ {
				s := generate(seed, &c)
				if again := generate(seed, &c); again.String() != s.String() {
					t.Fatalf("seed %d: two draws differ:\n%s\n---\n%s", seed, s, again)
				}
				if n := len(s.Nodes); n < tc.nodesLo || n > tc.hiMax {
					t.Errorf("seed %d: %d nodes, want %d..%d", seed, n, tc.nodesLo, tc.hiMax)
				}
				for _, st := range s.Steps {
					if !slices.Contains(tc.kinds, st.Kind) {
						t.Errorf("seed %d: %v drawn", seed, st)
					}
				}
				if bad := checkSchedule(s, &c); len(bad) > 0 {
					t.Errorf("seed %d:\n  %s\nschedule:\n%s", seed, strings.Join(bad, "\n  "), s)
				}
			}
		})
	}
}

// TestScheduleCoverage: 200 default seeds draw every kind of fault, the
// quick restart after a crash, and the large clusters.
func TestScheduleCoverage(t *testing.T) {
	c := defaultConfig()
	seen := map[Kind]int{}
	quick, large := 0, 0
	for seed := int64(1); seed <= 200; seed++ {
		s := generate(seed, &c)
		if len(s.Nodes) > 16 {
			large++
		}
		for i, st := range s.Steps {
			seen[st.Kind]++
			if st.Kind == Crash && i+1 < len(s.Steps) && s.Steps[i+1].Kind == Restart && s.Steps[i+1].Addr == st.Addr {
				quick++
			}
		}
	}
	for _, k := range Faults() {
		if seen[k] == 0 {
			t.Errorf("no seed drew %v", k)
		}
	}
	if quick == 0 || large == 0 {
		t.Errorf("%d quick restarts, %d large clusters", quick, large)
	}
	t.Logf("faults drawn by 200 seeds: %v; %d quick restarts; %d large clusters", seen, quick, large)
}

func TestScheduleTimingScales(t *testing.T) {
	fast, _ := NewSchedule(7)
	slow, _ := NewSchedule(7, WithTimeouts(time.Second, 5*time.Second))
	if len(fast.Steps) != len(slow.Steps) || slow.Heal != 10*fast.Heal || slow.Settle != 10*time.Second {
		t.Fatalf("a 10 times longer timeout should stretch the schedule 10 times:\n%s\n---\n%s", fast, slow)
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		opt  Option
		want string
	}{
		{WithSeeds(0), "WithSeeds(0)"},
		{WithSeed(-2), "WithSeed(-2)"},
		{WithNodes(0, 3), "WithNodes(0, 3)"},
		{WithNodes(5, 3), "WithNodes(5, 3)"},
		{WithSteps(-1, 3), "WithSteps(-1, 3)"},
		{WithTimeouts(0, time.Second), "WithTimeouts(0s, 1s)"},
		{WithTimeouts(time.Second, time.Second), "shorter than the network timeout"},
		{WithSettle(0), "WithSettle(0s)"},
		{WithFaults(Join), "join is not a fault"},
		{WithFaults(Kind(99)), "Kind(99) is not a fault"},
		{WithoutFaults(Faults()...), "no fault to draw"},
		{WithFaults(), "no fault to draw"},
	} {
		_, err := NewSchedule(1, tc.opt)
		if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want ErrInvalidOption saying %q", err, tc.want)
		}
	}
	if _, err := NewSchedule(1, WithoutFaults(Crash), WithFaults(Crash)); err != nil {
		t.Errorf("the last option should win: %v", err)
	}
}

func TestSeedList(t *testing.T) {
	c, _ := newConfig([]Option{WithSeeds(3)})
	if got := c.seedList(); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("WithSeeds(3): %v", got)
	}
	c, _ = newConfig([]Option{WithSeeds(3), WithSeed(17)})
	if got := c.seedList(); !slices.Equal(got, []int64{17}) {
		t.Errorf("WithSeed(17): %v", got)
	}
}

func TestPrepareErrors(t *testing.T) {
	if _, err := prepare(&Test[App]{}, nil, true); !errors.Is(err, ErrInvalidTest) {
		t.Errorf("a Test without Start: %v, want ErrInvalidTest", err)
	}
	start := func(*Host) (App, error) { return nil, nil }
	if _, err := prepare(&Test[App]{Start: start}, []Option{WithNodes(0, 0)}, true); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("WithNodes(0, 0): %v, want ErrInvalidOption", err)
	}
}

func TestReplayCommand(t *testing.T) {
	pc, _, _, _ := runtime.Caller(0)
	for _, tc := range []struct{ name, want string }{
		{"TestX", "go test ./chaostest -run '^TestX$'"},
		{"TestX/a+b_c", `go test ./chaostest -run '^TestX$/^a\+b_c$'`},
	} {
		if got := replayCommand(tc.name, pc); got != tc.want {
			t.Errorf("replayCommand(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
