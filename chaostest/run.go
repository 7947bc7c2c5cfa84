package chaostest

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/transport/memory"
)

// instance is one start of an application at an address.
type instance[A App] struct {
	app     A
	addr    string
	id      uint64
	stopped chan struct{} // closed when the harness stops it
}

func (in *instance[A]) String() string { return fmt.Sprintf("%s#%s", in.addr, short(in.id)) }

// runner runs one seed's schedule, inside the seed's bubble.
type runner[A App] struct {
	*run
	test  *Test[A]
	c     *config
	s     *Schedule
	nw    *memory.Network
	start time.Time // when the setup ended: the schedule's time 0
	wg    sync.WaitGroup

	mu      sync.Mutex // guards the fields below
	cur     map[string]*instance[A]
	starts  map[string]int // instances started at each address
	started int
}

// runSeed runs seed inside the bubble it is called in and returns its
// result once every node is closed.
func runSeed[A App](test *Test[A], c *config, seed int64, replay string) *Result {
	s := generate(seed, c)
	r := &runner[A]{run: &run{}, test: test, c: c, s: s, cur: map[string]*instance[A]{}, starts: map[string]int{}}
	if c.logs {
		r.logs = &logBuffer{}
	}
	r.nw = memory.NewNetwork(memory.WithSeed(seed), memory.WithTrace(func(s string) { r.logf("%s", s) }))
	began := time.Now()
	r.start = began
	r.schedule()
	r.shutdown()
	return r.result(began, replay)
}

// schedule runs the setup, the steps, the final heal and the checks.
func (r *runner[A]) schedule() {
	setup := r.s.Setup
	if len(setup) > 0 && setup[0].Kind == Latency {
		r.step(-1, setup[0])
		setup = setup[1:]
	}
	if r.startNode(r.s.Nodes[0]) == nil {
		return
	}
	for _, st := range setup {
		if !r.join(st) {
			return // a broken setup says nothing about faults
		}
	}
	r.start = time.Now()
	r.logf("--- setup done; the schedule's time 0")
	for i, st := range r.s.Steps {
		time.Sleep(time.Until(r.start.Add(st.At)))
		r.step(i, st)
		r.check(EveryStep)
	}
	time.Sleep(time.Until(r.start.Add(r.s.Heal)))
	r.healAll()
	healed := time.Now()
	time.Sleep(time.Until(healed.Add(r.s.Settle)))
	r.logf("--- settled; checking the invariants")
	r.run.mu.Lock()
	if r.lastChange.After(healed) {
		r.quiet = r.lastChange.Sub(healed)
	}
	r.run.mu.Unlock()
	r.check(Settled)
}

// check runs the invariants due at point w (Settled runs them all).
func (r *runner[A]) check(w When) {
	var apps []A
	for _, in := range r.live() {
		apps = append(apps, in.app)
	}
	for i, inv := range r.test.Invariants {
		if inv.Check == nil || (w == EveryStep && inv.At != EveryStep) {
			continue
		}
		synctest.Wait()
		if err := inv.Check(apps); err != nil {
			name := inv.Name
			if name == "" {
				name = fmt.Sprintf("invariant %d", i)
			}
			r.violation("%s: %v", name, err)
		}
	}
}

// step runs one step; i is its index in Steps (-1 for setup steps).
func (r *runner[A]) step(i int, st Step) {
	if i >= 0 {
		r.logf("step %d: %s", i+1, st)
	}
	nw := r.nw
	switch st.Kind {
	case Partition:
		nw.Partition(st.Groups...)
	case Heal:
		nw.Heal()
	case CutLink:
		nw.CutLink(st.Addr, st.Peer)
	case RestoreLink:
		nw.RestoreLink(st.Addr, st.Peer)
	case BlackHole:
		nw.BlackHole(st.Addr)
	case Unblackhole:
		nw.Unblackhole(st.Addr)
	case ResetLink:
		nw.ResetLink(st.Addr, st.Peer)
	case Latency:
		nw.SetLatency(st.Latency, st.Jitter)
	case LinkLatency:
		nw.SetLinkLatency(st.Addr, st.Peer, st.Latency, st.Jitter)
	case Crash, Leave:
		in := r.instance(st.Addr)
		if in == nil {
			r.logf("(%s skipped: %s is not running)", st.Kind, st.Addr)
			return
		}
		if st.Kind == Crash {
			nw.Kill(st.Addr)
		}
		r.stop(in)
	case Restart:
		if in := r.startNode(st.Addr); in != nil {
			r.joinLater(in, st.Peer, uint64(i))
		}
	case CloseRemote:
		r.closeRemote(st.Addr, st.Peer)
	}
}

// join runs a setup Join: it starts the node and joins it through Peer.
// It reports whether both worked.
func (r *runner[A]) join(st Step) bool {
	in := r.startNode(st.Addr)
	if in == nil {
		return false
	}
	if err := in.app.Node().Add(st.Peer); err != nil {
		r.violation("setup: %s could not join via %s: %v", in, st.Peer, err)
		return false
	}
	return true
}

// startNode starts an application at addr; nil if Start failed.
func (r *runner[A]) startNode(addr string) *instance[A] {
	r.mu.Lock()
	inc := r.starts[addr]
	r.starts[addr]++
	r.started++
	r.mu.Unlock()
	h := &Host{Addr: addr, Network: r.nw, Options: r.options(), Seed: r.s.Seed, Incarnation: inc, run: r.run}
	app, err := r.test.Start(h)
	if err != nil {
		r.violation("Start(%s): %v", addr, err)
		return nil
	}
	n := app.Node()
	if n == nil {
		r.violation("Start(%s): the application's Node() is nil", addr)
		return nil
	}
	in := &instance[A]{app: app, addr: addr, id: n.Instance(), stopped: make(chan struct{})}
	n.OnEvent(func(e cluster.Event) { r.event(in, e) })
	r.mu.Lock()
	r.cur[addr] = in
	r.mu.Unlock()
	r.logf("start %s (incarnation %d)", in, inc)
	return in
}

// options are the cluster options every node gets.
func (r *runner[A]) options() []cluster.Option {
	c := r.c
	o := []cluster.Option{
		cluster.WithTransport(r.nw),
		cluster.WithHealthyInterval(c.healthy),
		cluster.WithNetworkTimeout(c.timeout),
		cluster.WithReconnectInterval(c.healthy),
		cluster.WithMaxReconnectInterval(max(c.timeout/2, c.healthy)),
	}
	if r.logs != nil {
		o = append(o, cluster.WithLogger(slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	return o
}

// event records a membership event of in's node in the trace.
func (r *runner[A]) event(in *instance[A], e cluster.Event) {
	now := time.Now()
	r.run.mu.Lock()
	r.lastChange = now
	r.run.mu.Unlock()
	switch e.Kind {
	case cluster.EventAdded:
		r.logf("%s: +%s#%s", in, e.Remote.Addr(), short(e.Remote.Instance()))
	case cluster.EventRemoved:
		r.logf("%s: -%s#%s (%s)", in, e.Remote.Addr(), short(e.Remote.Instance()), e.Reason)
	}
}

// joinLater joins a restarted instance through via, and then through
// random live nodes, as a deployment's seed list would, until a join
// succeeds or the instance stops.
func (r *runner[A]) joinLater(in *instance[A], via string, stream uint64) {
	if via == "" {
		return
	}
	rng := rand.New(rand.NewPCG(uint64(r.s.Seed), stream))
	r.wg.Go(func() {
		for to := via; ; {
			err := in.app.Node().Add(to)
			r.logf("%s joins via %s: %v", in, to, err)
			if err == nil || errors.Is(err, cluster.ErrClosed) {
				return
			}
			select {
			case <-time.After(r.c.healthy):
			case <-in.stopped:
				return
			}
			var others []string
			for _, x := range r.live() {
				if x != in {
					others = append(others, x.addr)
				}
			}
			if len(others) == 0 {
				return
			}
			to = others[rng.IntN(len(others))]
		}
	})
}

func (r *runner[A]) closeRemote(from, to string) {
	in := r.instance(from)
	if in == nil {
		r.logf("(closeremote skipped: %s is not running)", from)
		return
	}
	n := in.app.Node()
	for _, rem := range n.Remotes() {
		if rem.Addr() == to {
			err := n.CloseRemote(rem)
			r.logf("%s closes its link to %s#%s: %v", in, to, short(rem.Instance()), err)
			return
		}
	}
	r.logf("(closeremote skipped: %s does not know %s)", in, to)
}

// instance returns the live instance at addr, or nil.
func (r *runner[A]) instance(addr string) *instance[A] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur[addr]
}

// live returns the live instances in address order.
func (r *runner[A]) live() []*instance[A] {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*instance[A]
	for _, a := range r.s.Nodes {
		if in := r.cur[a]; in != nil {
			out = append(out, in)
		}
	}
	return out
}

// stop closes a live instance's application.
func (r *runner[A]) stop(in *instance[A]) {
	r.mu.Lock()
	if r.cur[in.addr] == in {
		delete(r.cur, in.addr)
	}
	r.mu.Unlock()
	close(in.stopped)
	if err := in.app.Close(); err != nil {
		r.logf("%s: Close: %v", in, err)
	}
	r.logf("stopped %s", in)
}

// healAll undoes every fault but latency: the partition, the links still
// cut and the addresses still black-holed, in a fixed order.
func (r *runner[A]) healAll() {
	r.logf("--- heal everything")
	r.nw.Heal()
	var cut [][2]string
	var holes []string
	for _, st := range r.s.Steps {
		l := [2]string{st.Addr, st.Peer}
		switch st.Kind {
		case CutLink:
			if !slices.Contains(cut, l) {
				cut = append(cut, l)
			}
		case RestoreLink:
			cut = slices.DeleteFunc(cut, func(x [2]string) bool { return x == l })
		case BlackHole:
			if !slices.Contains(holes, st.Addr) {
				holes = append(holes, st.Addr)
			}
		case Unblackhole:
			holes = slices.DeleteFunc(holes, func(x string) bool { return x == st.Addr })
		}
	}
	for _, l := range cut {
		r.nw.RestoreLink(l[0], l[1])
	}
	for _, a := range holes {
		r.nw.Unblackhole(a)
	}
}

// shutdown closes every live application, waits for the harness's
// goroutines and closes the network.
func (r *runner[A]) shutdown() {
	for _, in := range r.live() {
		r.stop(in)
	}
	r.wg.Wait()
	r.nw.Close()
}
