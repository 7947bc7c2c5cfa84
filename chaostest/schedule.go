package chaostest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Kind says what a Step does.
type Kind uint8

// The kinds of step. Every kind but Join is a fault that WithFaults and
// WithoutFaults can choose; Join appears only in a schedule's setup.
const (
	// Partition splits the addresses into two or three groups that
	// cannot talk to each other (memory.Network.Partition).
	Partition Kind = iota + 1
	// Heal ends the partition (memory.Network.Heal).
	Heal
	// CutLink silently cuts the link between Addr and Peer.
	CutLink
	// RestoreLink undoes an earlier CutLink between Addr and Peer.
	RestoreLink
	// BlackHole makes Addr silent: its links hold their bytes, dials to
	// and from it hang.
	BlackHole
	// Unblackhole undoes an earlier BlackHole of Addr.
	Unblackhole
	// ResetLink resets every conn between Addr and Peer at once.
	ResetLink
	// Crash kills the host at Addr (memory.Network.Kill: its conns reset,
	// nothing more gets out), then closes its application, whose goodbyes
	// reach nobody.
	Crash
	// Leave closes the application at Addr: a graceful leave.
	Leave
	// Restart starts a new instance at the dead address Addr; it joins
	// through Peer, and through other live nodes until a join succeeds.
	Restart
	// CloseRemote makes the node at Addr let Peer go
	// (cluster.Node.CloseRemote), if it knows Peer then.
	CloseRemote
	// Latency sets the latency and jitter of every link without its own.
	Latency
	// LinkLatency sets the latency and jitter of the link between Addr
	// and Peer.
	LinkLatency
	// Join makes the node at Addr Add Peer (setup only).
	Join
)

var kindNames = [...]string{
	Partition: "partition", Heal: "heal", CutLink: "cut", RestoreLink: "restore",
	BlackHole: "blackhole", Unblackhole: "unblackhole", ResetLink: "reset",
	Crash: "crash", Leave: "leave", Restart: "restart", CloseRemote: "closeremote",
	Latency: "latency", LinkLatency: "linklatency", Join: "join",
}

// String returns the kind's name as schedule lines print it.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Faults returns every kind a schedule may draw, in the order of the
// constants.
func Faults() []Kind {
	var out []Kind
	for k := Partition; k < Join; k++ {
		out = append(out, k)
	}
	return out
}

// weights are the odds of each fault, out of 100, as peerkit's own chaos
// test has always drawn them.
var weights = map[Kind]int{
	Partition: 14, Heal: 10, CutLink: 8, RestoreLink: 6, BlackHole: 5, Unblackhole: 5,
	ResetLink: 5, Crash: 11, Leave: 6, Restart: 12, CloseRemote: 10, Latency: 4, LinkLatency: 4,
}

// Step is one line of a schedule.
type Step struct {
	// At is when the step runs, counted from the end of the setup (setup
	// steps have 0).
	At time.Duration
	// Kind is what the step does.
	Kind Kind
	// Addr is the node the step acts on, or one end of a link.
	Addr string
	// Peer is the other end of a link, the node CloseRemote lets go, or
	// the node a Join or Restart joins through ("" when there is none).
	Peer string
	// Groups are a Partition's groups.
	Groups [][]string
	// Latency and Jitter are a Latency or LinkLatency step's values.
	Latency, Jitter time.Duration
}

// String describes the step in one line, without its time.
func (s Step) String() string {
	switch s.Kind {
	case Partition:
		var g []string
		for _, x := range s.Groups {
			g = append(g, "["+strings.Join(x, " ")+"]")
		}
		return "partition " + strings.Join(g, " | ")
	case Heal:
		return "heal the partition"
	case CutLink, RestoreLink, ResetLink:
		return fmt.Sprintf("%s %s <-> %s", s.Kind, s.Addr, s.Peer)
	case BlackHole, Unblackhole, Crash, Leave:
		return fmt.Sprintf("%s %s", s.Kind, s.Addr)
	case Restart:
		if s.Peer == "" {
			return fmt.Sprintf("restart %s", s.Addr)
		}
		return fmt.Sprintf("restart %s, joining via %s", s.Addr, s.Peer)
	case CloseRemote:
		return fmt.Sprintf("closeremote %s -> %s", s.Addr, s.Peer)
	case Latency:
		return fmt.Sprintf("latency %v jitter %v", s.Latency, s.Jitter)
	case LinkLatency:
		return fmt.Sprintf("latency %s <-> %s %v jitter %v", s.Addr, s.Peer, s.Latency, s.Jitter)
	case Join:
		return fmt.Sprintf("join %s via %s", s.Addr, s.Peer)
	}
	return s.Kind.String()
}

// Schedule is what one seed runs: the nodes, the setup (the initial
// latency and the joins), the faults, the final heal and the check. It
// depends only on the seed and the options.
type Schedule struct {
	// Seed is the seed the schedule was drawn from.
	Seed int64
	// Nodes are the addresses, in order; each starts before the setup.
	Nodes []string
	// Setup runs in order before the faults: an initial latency, then
	// every node but the first joins through an earlier one.
	Setup []Step
	// Steps are the faults, in order of At.
	Steps []Step
	// Heal is when every fault is undone for good (the partition healed,
	// cut links restored, black holes lifted); latency stays.
	Heal time.Duration
	// Settle is how long after Heal the invariants are checked.
	Settle time.Duration
}

// Lines returns the schedule as readable lines, one per step, each with
// its time.
func (s *Schedule) Lines() []string {
	out := []string{fmt.Sprintf("seed %d: no nodes", s.Seed)}
	if len(s.Nodes) > 0 {
		out[0] = fmt.Sprintf("seed %d: %d nodes %s .. %s", s.Seed, len(s.Nodes), s.Nodes[0], s.Nodes[len(s.Nodes)-1])
	}
	for _, st := range s.Setup {
		out = append(out, "  setup   "+st.String())
	}
	for _, st := range s.Steps {
		out = append(out, fmt.Sprintf("%8.3fs %s", st.At.Seconds(), st))
	}
	out = append(out,
		fmt.Sprintf("%8.3fs heal everything", s.Heal.Seconds()),
		fmt.Sprintf("%8.3fs check the invariants", (s.Heal+s.Settle).Seconds()))
	return out
}

// String returns Lines joined by newlines.
func (s *Schedule) String() string { return strings.Join(s.Lines(), "\n") }

// NewSchedule draws the schedule that the options give seed, as Run would
// run it. It does no I/O: use it to see or test what a seed does.
func NewSchedule(seed int64, opts ...Option) (*Schedule, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return generate(seed, &c), nil
}

// generator draws a schedule from a seeded source. It models what the
// schedule does to the cluster (which addresses are live, which links cut,
// which addresses black-holed) so that each step makes sense when it runs.
type generator struct {
	rng   *rand.Rand
	c     *config
	addrs []string
	live  map[string]bool
	cut   [][2]string // in the order they were cut
	holes []string
	at    time.Duration
	out   []Step
}

func generate(seed int64, c *config) *Schedule {
	g := &generator{rng: rand.New(rand.NewPCG(uint64(seed), 0xc4a05)), c: c, live: map[string]bool{}}
	n := g.size()
	width := len(fmt.Sprint(n - 1))
	for i := range n {
		a := fmt.Sprintf("n%0*d:1", max(width, 2), i)
		g.addrs = append(g.addrs, a)
		g.live[a] = true
	}
	s := &Schedule{Seed: seed, Nodes: g.addrs, Settle: c.settle()}
	if c.allowed(Latency) && g.rng.IntN(2) == 0 {
		s.Setup = append(s.Setup, Step{Kind: Latency,
			Latency: time.Duration(g.rng.IntN(10)) * time.Millisecond, Jitter: time.Duration(g.rng.IntN(5)) * time.Millisecond})
	}
	for i := 1; i < n; i++ {
		s.Setup = append(s.Setup, Step{Kind: Join, Addr: g.addrs[i], Peer: g.addrs[g.rng.IntN(i)]})
	}
	steps := c.stepsMin + g.rng.IntN(c.stepsMax-c.stepsMin+1)
	for range steps {
		g.at += g.scale(20 + g.rng.IntN(400))
		g.step()
	}
	s.Steps = g.out
	s.Heal = g.at + g.scale(g.rng.IntN(300))
	return s
}

// size draws the number of nodes: by default mostly 8 to 12, and one
// seed in 16 from 17 to 32.
func (g *generator) size() int {
	c := g.c
	if c.nodesMin == 0 {
		if g.rng.IntN(16) == 0 {
			return 17 + g.rng.IntN(16)
		}
		return 8 + g.rng.IntN(5)
	}
	return c.nodesMin + g.rng.IntN(c.nodesMax-c.nodesMin+1)
}

// scale turns a number of milliseconds of the default timing (a 500 ms
// network timeout) into the configured one.
func (g *generator) scale(ms int) time.Duration {
	return time.Duration(ms) * g.c.timeout / 500
}

func (g *generator) pick(s []string) string { return s[g.rng.IntN(len(s))] }

func (g *generator) liveAddrs() []string {
	var out []string
	for _, a := range g.addrs {
		if g.live[a] {
			out = append(out, a)
		}
	}
	return out
}

func (g *generator) emit(s Step) {
	s.At = g.at
	g.out = append(g.out, s)
}

// kind draws the next fault among the allowed ones, by their weights.
func (g *generator) kind() Kind {
	r := g.rng.IntN(g.c.totalWeight())
	for _, k := range Faults() {
		if !g.c.allowed(k) {
			continue
		}
		if r < weights[k] {
			return k
		}
		r -= weights[k]
	}
	panic("unreachable: weights out of step with totalWeight")
}

// step draws one fault; a fault that cannot apply now (a restart with
// nobody dead, a crash that would leave half the cluster or less alive)
// is skipped, as it always was.
func (g *generator) step() {
	a, b := g.pick(g.addrs), g.pick(g.addrs)
	for len(g.addrs) > 1 && b == a {
		b = g.pick(g.addrs)
	}
	switch k := g.kind(); k {
	case Partition:
		g.partition()
	case Heal:
		g.emit(Step{Kind: k})
	case BlackHole:
		if !slices.Contains(g.holes, a) {
			g.holes = append(g.holes, a)
		}
		g.emit(Step{Kind: k, Addr: a})
	case RestoreLink, Unblackhole:
		g.undo(k)
	case Crash, Leave:
		g.stop(k)
	case Restart:
		if dead := g.deadAddrs(); len(dead) > 0 {
			g.restart(g.pick(dead))
		}
	case Latency:
		g.emit(Step{Kind: k, Latency: time.Duration(g.rng.IntN(30)) * time.Millisecond, Jitter: time.Duration(g.rng.IntN(20)) * time.Millisecond})
	default: // between two nodes
		if a != b {
			g.between(k, a, b)
		}
	}
}

// partition splits the nodes at random into two or three groups.
func (g *generator) partition() {
	groups := make([][]string, 2+g.rng.IntN(2))
	for _, x := range g.addrs {
		i := g.rng.IntN(len(groups))
		groups[i] = append(groups[i], x)
	}
	groups = slices.DeleteFunc(groups, func(g []string) bool { return len(g) == 0 })
	g.emit(Step{Kind: Partition, Groups: groups})
}

// undo restores a random cut link or lifts a random black hole, if any.
func (g *generator) undo(k Kind) {
	switch {
	case k == RestoreLink && len(g.cut) > 0:
		i := g.rng.IntN(len(g.cut))
		l := g.cut[i]
		g.cut = slices.Delete(g.cut, i, i+1)
		g.emit(Step{Kind: k, Addr: l[0], Peer: l[1]})
	case k == Unblackhole && len(g.holes) > 0:
		i := g.rng.IntN(len(g.holes))
		h := g.holes[i]
		g.holes = slices.Delete(g.holes, i, i+1)
		g.emit(Step{Kind: k, Addr: h})
	}
}

// between draws a fault between two distinct nodes a and b.
func (g *generator) between(k Kind, a, b string) {
	switch k {
	case CutLink:
		l := [2]string{min(a, b), max(a, b)}
		if !slices.Contains(g.cut, l) {
			g.cut = append(g.cut, l)
		}
		g.emit(Step{Kind: k, Addr: l[0], Peer: l[1]})
	case ResetLink:
		g.emit(Step{Kind: k, Addr: a, Peer: b})
	case CloseRemote:
		if live := g.liveAddrs(); len(live) > 0 {
			from := g.pick(live)
			to := g.pick(g.addrs)
			for to == from {
				to = g.pick(g.addrs)
			}
			g.emit(Step{Kind: k, Addr: from, Peer: to})
		}
	case LinkLatency:
		g.emit(Step{Kind: k, Addr: a, Peer: b,
			Latency: time.Duration(g.rng.IntN(30)) * time.Millisecond, Jitter: time.Duration(g.rng.IntN(20)) * time.Millisecond})
	}
}

// stop crashes or closes a live node, unless half the cluster or less is
// alive. Half the crashes restart quickly, while peers behind a silent
// link may still hold the old instance's link.
func (g *generator) stop(k Kind) {
	live := g.liveAddrs()
	if len(live) <= len(g.addrs)/2 {
		return
	}
	a := g.pick(live)
	g.live[a] = false
	g.emit(Step{Kind: k, Addr: a})
	if k == Crash && g.c.allowed(Restart) && g.rng.IntN(2) == 0 {
		g.at += g.scale(g.rng.IntN(300))
		g.restart(a)
	}
}

func (g *generator) restart(a string) {
	var via []string
	for _, x := range g.liveAddrs() {
		if x != a {
			via = append(via, x)
		}
	}
	s := Step{Kind: Restart, Addr: a}
	if len(via) > 0 {
		s.Peer = g.pick(via)
	}
	g.live[a] = true
	g.emit(s)
}

func (g *generator) deadAddrs() []string {
	var out []string
	for _, a := range g.addrs {
		if !g.live[a] {
			out = append(out, a)
		}
	}
	return out
}
