package chaostest_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerkit/peerkit/chaostest"
	"github.com/peerkit/peerkit/cluster"
)

// leader is a small leader choice: the lowest address among the node and
// the remotes it knows leads. It follows the membership through the
// node's events, as an application would.
type leader struct {
	node *cluster.Node

	mu    sync.Mutex // guards peers
	peers map[string]bool
}

// startLeader is the Test's Start: one node's application.
func startLeader(h *chaostest.Host) (*leader, error) {
	return newLeader(h, false)
}

// newLeader starts the application; with forgetful it has the planted
// bug: it ignores RemoteRemoved, so a removed peer stays a candidate.
func newLeader(h *chaostest.Host, forgetful bool) (*leader, error) {
	n, err := cluster.New(h.Addr, h.Options...)
	if err != nil {
		return nil, err
	}
	l := &leader{node: n, peers: map[string]bool{}}
	n.RemoteAdded(func(r cluster.Remote) {
		l.mu.Lock()
		l.peers[r.Addr()] = true
		l.mu.Unlock()
	})
	if !forgetful {
		n.RemoteRemoved(func(r cluster.Remote) {
			l.mu.Lock()
			delete(l.peers, r.Addr())
			l.mu.Unlock()
		})
	}
	return l, nil
}

// Leader returns the address this node names as the leader.
func (l *leader) Leader() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	best := l.node.AdvertiseAddr()
	for a := range l.peers {
		best = min(best, a)
	}
	return best
}

func (l *leader) Node() *cluster.Node { return l.node }
func (l *leader) Close() error        { return l.node.Close() }

// oneLeader is the invariant: once the network has healed and two network
// timeouts have passed (Settled), every live node names the same leader.
var oneLeader = chaostest.Invariant[*leader]{
	Name: "one leader",
	Check: func(apps []*leader) error {
		var names []string
		agree := true
		for _, a := range apps {
			names = append(names, a.node.AdvertiseAddr()+"->"+a.Leader())
			agree = agree && a.Leader() == apps[0].Leader()
		}
		if !agree {
			return fmt.Errorf("the live nodes disagree: %s", strings.Join(names, " "))
		}
		return nil
	},
}

// leaderOptions are the example's: CloseRemote is left out, because a node
// that let a peer go on purpose rightly no longer counts it.
var leaderOptions = []chaostest.Option{
	chaostest.WithSeeds(200),
	chaostest.WithNodes(3, 7),
	chaostest.WithoutFaults(chaostest.CloseRemote),
}

// TestLeader runs the leader choice on 200 seeds of random faults.
// Replay a failing seed with
//
//	go test ./chaostest -run '^TestLeader$' -chaostest.seed=N
func TestLeader(t *testing.T) {
	start := time.Now()
	results := chaostest.Run(t, chaostest.Test[*leader]{
		Start:      startLeader,
		Invariants: []chaostest.Invariant[*leader]{oneLeader},
	}, leaderOptions...)
	t.Logf("%d seeds in %v", len(results), time.Since(start).Round(time.Millisecond))
}

// TestLeaderPlantedBug shows the harness catching a bug: the leader that
// ignores RemoteRemoved keeps a peer that crashed or left as a candidate,
// while a node that started later never heard of it. Find returns the
// first seed that fails; its report names the seed, the command that
// replays it, the violation, the schedule and the trace, for instance:
//
//	chaostest: seed 58 failed
//	replay: go test ./chaostest -run '^TestLeaderPlantedBug$' -chaostest.seed=58
//	violations:
//	  - one leader: the live nodes disagree: n02:1->n00:1 n03:1->n02:1 n04:1->n00:1
//	schedule:
//	  seed 58: 5 nodes n00:1 .. n04:1
//	  ...
//	     1.265s crash n01:1
//	     1.306s crash n03:1
//	     1.479s partition [n00:1 n01:1 n04:1] | [n02:1] | [n03:1]
//	     1.503s crash n00:1
//	     1.655s restart n03:1, joining via n04:1
//	     1.706s heal everything
//	     2.706s check the invariants
//	trace (virtual time):
//	  ...
//	     1.503s  step 8: crash n00:1
//	     1.503s  memory: kill n00:1 (0 conns reset, 1 behind silent links)
//	  ...
//	     2.706s  VIOLATION: one leader: the live nodes disagree: n02:1->n00:1 n03:1->n02:1 n04:1->n00:1
//
// n00:1 crashed for good, but n02:1 and n04:1 still count it; the
// restarted n03:1 never heard of it. Run with -v to see the whole report.
//
// The test passes when the bug is caught, and when replaying the seed
// catches it again.
func TestLeaderPlantedBug(t *testing.T) {
	buggy := chaostest.Test[*leader]{
		Start:      func(h *chaostest.Host) (*leader, error) { return newLeader(h, true) },
		Invariants: []chaostest.Invariant[*leader]{oneLeader},
	}
	res := chaostest.Find(t, buggy, leaderOptions...)
	if res == nil {
		t.Fatal("no seed caught the leader that ignores RemoteRemoved (with -chaostest.seed, Find tries that seed only)")
	}
	t.Logf("caught:\n%s", res.Report())
	report := res.Report()
	for _, want := range []string{
		fmt.Sprintf("seed %d failed", res.Seed),
		fmt.Sprintf("-chaostest.seed=%d", res.Seed),
		"one leader: the live nodes disagree",
		res.Schedule.Lines()[0],
		"heal everything",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}
	again := chaostest.Find(t, buggy, append(leaderOptions, chaostest.WithSeed(res.Seed))...)
	if again == nil {
		t.Fatalf("replaying seed %d did not catch the bug again", res.Seed)
	}
	if again.Schedule.String() != res.Schedule.String() {
		t.Errorf("replaying seed %d drew another schedule:\n%s\nthen:\n%s", res.Seed, res.Schedule, again.Schedule)
	}
}
