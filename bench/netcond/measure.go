package netcond

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerkit/peerkit/bench"
	"github.com/peerkit/peerkit/cluster"
)

// Plan is what one comparison measures.
type Plan struct {
	Transports []string      // of Transports()
	Sizes      []int         // payload sizes of the throughput runs
	Small      int           // payload of the round trips, alone and beside the bulk
	Bulk       int           // payload of the bulk transfer beside them
	Duration   time.Duration // of each throughput and round-trip run
}

// DefaultPlan is the report's.
func DefaultPlan() Plan {
	return Plan{Transports: Transports(), Sizes: []int{1 << 10, 64 << 10}, Small: 64, Bulk: 64 << 10, Duration: time.Second}
}

// Check reports a plan that cannot run.
func (p Plan) Check() error {
	if len(p.Transports) == 0 {
		return errors.New("netcond: no transports")
	}
	for _, t := range p.Transports {
		if !isTransport(t) {
			return fmt.Errorf("netcond: unknown transport %q (have %v)", t, Transports())
		}
	}
	for _, s := range append([]int{p.Small, p.Bulk}, p.Sizes...) {
		if s < 1 || s > MaxSize {
			return fmt.Errorf("netcond: payload size %d out of 1..%d", s, MaxSize)
		}
	}
	if p.Small >= p.Bulk {
		return fmt.Errorf("netcond: the small payload (%d B) must be smaller than the bulk one (%d B)", p.Small, p.Bulk)
	}
	if p.Duration < 10*time.Millisecond {
		return errors.New("netcond: duration below 10ms")
	}
	return nil
}

// Steps is the number of progress steps of one transport.
func (p Plan) Steps() int { return 2*len(p.Sizes) + 3 }

// Estimate is how long one condition takes on a clean network, roughly:
// each run lasts Duration plus a sizing run and setting up, a silent host
// takes a second (the network timeout) and a little to be removed, and the
// head-of-line runs wait for the bulk's queue. Loss makes them longer.
func (p Plan) Estimate() time.Duration {
	per := time.Duration(2*len(p.Sizes))*(p.Duration*5/4+300*time.Millisecond) + 3*p.Duration + 4*time.Second
	return time.Duration(len(p.Transports)) * per
}

// Throughput is one payload size's rates, both ways.
type Throughput struct {
	Size          int
	Out, In       bench.Rate // client → server, server → client
	OutErr, InErr string
}

// Result is one transport's measurements under one condition.
type Result struct {
	Condition, Transport string
	Tput                 []Throughput
	RTT50, RTT99         time.Duration // Small round trips alone
	RTTErr               string
	// Small round trips to a second remote (on the same host as the first)
	// while a bulk transfer runs to the first; and to the bulk's own remote.
	HOLOther50, HOLOther99 time.Duration
	HOLSame50, HOLSame99   time.Duration
	HOLBulk                bench.Rate // the bulk transfer meanwhile
	HOLErr                 string
	Removal                time.Duration // from the silence to RemoteRemoved
	Silence                string        // how the host went silent: nft or app
	RemovalErr             string
}

// HOLQueue is the measuring node's send queue per remote in the
// head-of-line runs (cluster.WithSendQueueSize; the default is 1024): a
// small message to the bulk's own remote waits behind at most this many
// bulk ones.
const HOLQueue = 16

// Progress is told of each step (as the report's status line is).
type Progress func(format string, args ...any)

// Connect measures every transport of plan against the server at addr and
// labels the results with condition.
func Connect(ctx context.Context, addr string, plan Plan, condition string, step Progress) ([]Result, error) {
	if err := plan.Check(); err != nil {
		return nil, err
	}
	cl, err := dialControl(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	var out []Result
	for _, tr := range plan.Transports {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		r := measure(ctx, cl, tr, plan, step, condition)
		r.Condition = condition
		out = append(out, r)
	}
	return out, nil
}

// rig is the client's node and two server nodes, linked: b[0] takes the
// bulk and the throughput runs, b[1] the round trips.
type rig struct {
	cl     *client
	nt     *bench.Net
	a      *cluster.Node
	b      [2]cluster.Remote
	closed atomic.Bool
	mu     sync.Mutex
	lost   []string // remotes the client node removed, and why
}

// why adds to a step's error what the client node removed meanwhile.
func (g *rig) why(err error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.lost) == 0 {
		return err
	}
	return fmt.Errorf("%w; meanwhile %s", err, strings.Join(g.lost, ", "))
}

func newRig(cl *client, tr string, opts ...cluster.Option) (*rig, error) {
	addrs, err := cl.nodes(tr, 2, "default")
	if err != nil {
		return nil, err
	}
	nt, err := bench.NewNet(tr)
	if err != nil {
		return nil, err
	}
	g := &rig{cl: cl, nt: nt}
	t, err := nt.Transport()
	if err != nil {
		g.close()
		return nil, err
	}
	if g.a, err = cluster.New(net.JoinHostPort(cl.localHost(), "0"), append([]cluster.Option{cluster.WithTransport(t)}, opts...)...); err != nil {
		g.close()
		return nil, err
	}
	g.a.OnEvent(func(ev cluster.Event) {
		if ev.Kind == cluster.EventRemoved {
			g.mu.Lock()
			g.lost = append(g.lost, fmt.Sprintf("%s removed (%v: %v)", ev.Remote.Addr(), ev.Reason, ev.Err))
			g.mu.Unlock()
		}
	})
	for i, addr := range addrs {
		if err := g.a.Add(addr); err != nil {
			g.close()
			return nil, fmt.Errorf("add %s: %w", addr, err)
		}
		for _, r := range g.a.Remotes() {
			if r.Addr() == addr {
				g.b[i] = r
			}
		}
		if g.b[i].Addr() == "" {
			g.close()
			return nil, fmt.Errorf("netcond: %s not among the remotes after Add", addr)
		}
	}
	return g, nil
}

func (g *rig) close() {
	if g.closed.Swap(true) {
		return
	}
	if g.a != nil {
		g.a.Close()
	}
	g.nt.Close()
	g.cl.do(time.Minute, "CLOSE")
}

// guard closes the rig if f has not returned after limit, which unblocks
// whatever waits on the client node; the rig is then spent.
func (g *rig) guard(limit time.Duration, f func() error) error {
	fired := make(chan struct{})
	t := time.AfterFunc(limit, func() { defer close(fired); g.close() })
	err := f()
	if !t.Stop() {
		<-fired
		if err == nil {
			err = errors.New("abandoned")
		}
		return fmt.Errorf("no result after %v: %w", limit, err)
	}
	return err
}

func (g *rig) end(i int) bench.Endpoint { return bench.NodeEndpoint(g.a, g.b[i]) }

// roundTrips times small round trips to server node i (in echo mode).
func (g *rig) roundTrips(i int, plan Plan) ([]time.Duration, error) {
	ds, err := bench.RoundTripsFor(bench.NewPair(g.end(i), echoSink{}), plan.Small, plan.Duration)
	if err == nil {
		_, _, err = g.cl.wait(i, time.Minute) // the run's end: every ping arrived
	}
	return ds, err
}

// measure runs one transport's steps; a step that fails spends the rig,
// and the next step makes a new one.
func measure(ctx context.Context, cl *client, tr string, plan Plan, step Progress, cond string) Result {
	res := Result{Transport: tr}
	limit := 10*plan.Duration + 30*time.Second
	var g *rig
	var rigOpts []cluster.Option
	defer func() {
		if g != nil {
			g.close()
		}
	}()
	// run gets a working rig and runs f on it under the watchdog.
	run := func(f func(g *rig) error) string {
		if g != nil && g.closed.Load() {
			g = nil
		}
		if g == nil {
			var err error
			if g, err = newRig(cl, tr, rigOpts...); err != nil {
				g = nil
				return "setup: " + err.Error()
			}
		}
		if err := g.guard(limit, func() error { return f(g) }); err != nil {
			err = g.why(err)
			g.close()
			return err.Error()
		}
		return ""
	}
	for _, size := range plan.Sizes {
		t := Throughput{Size: size}
		step("network %s: %s throughput %s, out", cond, tr, bench.SizeName(size))
		t.OutErr = run(func(g *rig) (err error) {
			sink := &remoteSink{cl: cl, i: 0, timeout: limit}
			t.Out, err = sized(bench.NewPair(g.end(0), sink), size, plan.Duration, func() int { return sink.msgs })
			return err
		})
		step("network %s: %s throughput %s, in", cond, tr, bench.SizeName(size))
		t.InErr = run(func(g *rig) (err error) {
			snd := &remoteSender{cl: cl, i: 0, to: g.a.AdvertiseAddr(), timeout: limit}
			rcv := &counting{Endpoint: g.end(0)}
			t.In, err = sized(bench.NewPair(snd, rcv), size, plan.Duration, func() int { m := rcv.msgs; rcv.msgs = 0; return m })
			return err
		})
		res.Tput = append(res.Tput, t)
	}
	step("network %s: %s round trip", cond, tr)
	res.RTTErr = run(func(g *rig) error {
		if err := cl.mode(1, plan.Small); err != nil {
			return err
		}
		ds, err := g.roundTrips(1, plan)
		res.RTT50, res.RTT99 = bench.Percentile(ds, 0.5), bench.Percentile(ds, 0.99)
		return err
	})
	step("network %s: %s round trip beside a bulk transfer", cond, tr)
	if g != nil { // a rig whose node queues at most HOLQueue messages per remote
		g.close()
		g = nil
	}
	rigOpts = []cluster.Option{cluster.WithSendQueueSize(HOLQueue)}
	res.HOLErr = run(func(g *rig) error { return hol(g, plan, &res) })
	if g != nil {
		g.close()
		g = nil
	}
	step("network %s: %s silent host to removal", cond, tr)
	res.Removal, res.Silence, res.RemovalErr = removal(ctx, cl, tr)
	return res
}

func isTransport(t string) bool {
	for _, x := range Transports() {
		if x == t {
			return true
		}
	}
	return false
}
