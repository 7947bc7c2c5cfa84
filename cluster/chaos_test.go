package cluster

import (
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

// The chaos test: random schedules of faults on whole clusters, in virtual
// time. Each seed picks a cluster size, joins it, runs a schedule of
// partitions, heals, cut and reset links, black holes, kills (crashes),
// restarts, graceful closes, CloseRemote calls and latency changes while
// every node sends numbered messages; then it heals the network and checks
// membership and delivery: between two surviving instances whose link
// stayed up from the cluster's view (neither saw the other removed, no
// CloseRemote between them), no message is lost, whatever faults the
// network went through meanwhile, and no payload ever arrives garbled. A
// failure prints the seed and the trace; replay it with
//
//	go test ./cluster -run TestChaos -chaos.seed=N [-chaos.log]
var (
	chaosSeeds = flag.Int("chaos.seeds", 200, "TestChaos: number of random schedules (seeds 1..N)")
	chaosSeed  = flag.Int64("chaos.seed", -1, "TestChaos: run only this seed (replay a failure)")
	chaosLog   = flag.Bool("chaos.log", false, "TestChaos: print the nodes' debug logs with a failure's trace")
	chaosTrace = flag.Bool("chaos.trace", false, "TestChaos: print every seed's trace, not only a failure's")
)

const (
	chaosMaxReconnect = 250 * time.Millisecond // backoff cap: convergence within two timeouts of a heal
	chaosSettle       = 2 * testTimeout        // the convergence bound after the final heal
)

// chaosTotals sums, over all seeds, what the checks covered, so that a
// run whose checks never bite is noticed.
type chaosTotals struct {
	seeds, nodes, faults     atomic.Int64
	delivered, upPairs       atomic.Int64 // pairs whose link stayed up, checked for loss
	upMsgs, upFaulted        atomic.Int64 // their messages; the pairs a silent fault touched
	upFaultedMsgs            atomic.Int64
	restarts, closeRemotes   atomic.Int64
	virtual                  atomic.Int64 // nanoseconds
	membershipChecks, aparts atomic.Int64
	worstConvergence         atomic.Int64 // nanoseconds from the final heal to the right membership
}

func TestChaos(t *testing.T) {
	first, count := int64(1), int64(*chaosSeeds)
	if *chaosSeed >= 0 {
		first, count = *chaosSeed, 1
	} else if testing.Short() {
		count = min(count, 20)
	}
	var tot chaosTotals
	start := time.Now()
	t.Run("seeds", func(t *testing.T) {
		for seed := first; seed < first+count; seed++ {
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				t.Parallel()
				runChaos(t, seed, &tot)
			})
		}
	})
	t.Logf("chaos: %d seeds, %d nodes, %d faults, %d restarts, %d CloseRemote (%d pairs kept apart), %d messages delivered; "+
		"%d pairs whose link stayed up checked for loss with %d messages (%d of the pairs, with %d messages, between addresses a silent fault touched); "+
		"worst convergence after the final heal %v (bound %v); %v virtual, %v real",
		tot.seeds.Load(), tot.nodes.Load(), tot.faults.Load(), tot.restarts.Load(), tot.closeRemotes.Load(), tot.aparts.Load(),
		tot.delivered.Load(), tot.upPairs.Load(), tot.upMsgs.Load(), tot.upFaulted.Load(), tot.upFaultedMsgs.Load(),
		time.Duration(tot.worstConvergence.Load()), chaosSettle,
		time.Duration(tot.virtual.Load()).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if !t.Failed() && count >= 20 {
		// The checks must have had something to check.
		if tot.upMsgs.Load() == 0 || tot.upFaultedMsgs.Load() == 0 || tot.restarts.Load() == 0 || tot.aparts.Load() == 0 || tot.membershipChecks.Load() == 0 {
			t.Errorf("chaos schedules exercised too little: %+v", &tot)
		}
	}
}

// chaos is the state of one seed's run.
type chaos struct {
	t     *testing.T
	seed  int64
	rng   *rand.Rand // the schedule's: used by the test goroutine only
	nw    *memory.Network
	start time.Time
	addrs []string
	logs  *logBuffer // nodes' logs, with -chaos.log

	mu       sync.Mutex // guards the fields below
	trace    []string
	cur      map[string]*chaosNode // the live instance at each address
	all      []*chaosNode          // every instance ever started
	touched  map[[2]string]bool    // address pairs a silent fault touched (for the figures)
	apart    map[[2]uint64]bool    // instance pairs closed on purpose (CloseRemote)
	removed  map[[2]uint64]bool    // instance pairs where one saw the other removed
	cut      map[[2]string]bool
	holes    map[string]bool
	failures []string

	stopSend chan struct{}  // closed: every sender stops
	wg       sync.WaitGroup // senders, readers, joiners
}

// chaosNode is one instance (one New) at an address.
type chaosNode struct {
	n    *Node
	addr string
	inst uint64
	stop chan struct{} // closed when the instance is killed or closed

	// guarded by chaos.mu
	dead bool
	sent map[uint64]uint64 // receiver instance: last sequence number queued by Send
	recv map[uint64]uint64 // sender instance: last sequence number received
	gaps map[uint64]uint64 // sender instance: messages skipped
}

func pairKey(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

func instKey(a, b uint64) [2]uint64 {
	if b < a {
		a, b = b, a
	}
	return [2]uint64{a, b}
}

func short(inst uint64) string { return fmt.Sprintf("%04x", inst&0xffff) }

func (c *chaos) logf(format string, args ...any) {
	line := fmt.Sprintf("%8.3fs  ", time.Since(c.start).Seconds()) + fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.trace = append(c.trace, line)
	c.mu.Unlock()
}

// failf records a violation; the run goes on so that the trace shows what
// followed.
func (c *chaos) failf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.logf("VIOLATION: %s", msg)
	c.mu.Lock()
	if len(c.failures) < 20 {
		c.failures = append(c.failures, msg)
	}
	c.mu.Unlock()
}

func runChaos(t *testing.T, seed int64, tot *chaosTotals) {
	synctest.Test(t, func(t *testing.T) {
		c := &chaos{
			t:        t,
			seed:     seed,
			rng:      rand.New(rand.NewPCG(uint64(seed), 0xc4a05)),
			start:    time.Now(),
			cur:      make(map[string]*chaosNode),
			touched:  make(map[[2]string]bool),
			apart:    make(map[[2]uint64]bool),
			removed:  make(map[[2]uint64]bool),
			cut:      make(map[[2]string]bool),
			holes:    make(map[string]bool),
			stopSend: make(chan struct{}),
		}
		if *chaosLog {
			c.logs = &logBuffer{}
		}
		c.nw = memory.NewNetwork(memory.WithSeed(seed), memory.WithTrace(func(s string) { c.logf("%s", s) }))
		t.Cleanup(func() {
			c.shutdown()
			if t.Failed() || len(c.failures) > 0 {
				c.report(t)
			} else if *chaosTrace {
				c.mu.Lock()
				t.Logf("seed %d trace:\n  %s", seed, strings.Join(c.trace, "\n  "))
				if c.logs != nil {
					t.Logf("node logs:\n%s", c.logs.String())
				}
				c.mu.Unlock()
			}
		})
		c.run(tot)
		tot.virtual.Add(int64(time.Since(c.start)))
	})
}

// size picks the cluster size: mostly small, sometimes up to 32.
func (c *chaos) size() int {
	if c.rng.IntN(16) == 0 {
		return 17 + c.rng.IntN(16)
	}
	return 8 + c.rng.IntN(5)
}

func (c *chaos) run(tot *chaosTotals) {
	t := c.t
	n := c.size()
	for i := range n {
		c.addrs = append(c.addrs, fmt.Sprintf("n%02d:1", i))
	}
	c.logf("seed %d: %d nodes", c.seed, n)
	tot.seeds.Add(1)
	tot.nodes.Add(int64(n))
	if c.rng.IntN(2) == 0 {
		c.nw.SetLatency(time.Duration(c.rng.IntN(10))*time.Millisecond, time.Duration(c.rng.IntN(5))*time.Millisecond)
	}
	for i, a := range c.addrs {
		cn := c.startNode(a)
		if i > 0 {
			to := c.addrs[c.rng.IntN(i)]
			if err := cn.n.Add(to); err != nil {
				t.Fatalf("seed %d: join %s -> %s: %v", c.seed, a, to, err)
			}
		}
	}

	// The schedule: faults at random intervals while everyone sends.
	steps := 5 + c.rng.IntN(6)
	for range steps {
		time.Sleep(time.Duration(20+c.rng.IntN(400)) * time.Millisecond)
		c.step(tot)
	}

	// Heal everything, then give the cluster two network timeouts.
	time.Sleep(time.Duration(c.rng.IntN(300)) * time.Millisecond)
	c.nw.Heal()
	for k := range c.cut {
		c.nw.RestoreLink(k[0], k[1])
	}
	for a := range c.holes {
		c.nw.Unblackhole(a)
	}
	healed := time.Now()
	for !c.membershipOK() && time.Since(healed) < chaosSettle {
		time.Sleep(10 * time.Millisecond)
	}
	conv := time.Since(healed)
	for {
		old := tot.worstConvergence.Load()
		if int64(conv) <= old || tot.worstConvergence.CompareAndSwap(old, int64(conv)) {
			break
		}
	}
	c.logf("--- healed; membership converged after %v; checking it at %v", conv, chaosSettle)
	time.Sleep(time.Until(healed.Add(chaosSettle)))
	c.checkMembership(tot)

	// Stop sending, let what is queued arrive, check delivery.
	close(c.stopSend)
	time.Sleep(3 * testHealthy)
	synctest.Wait()
	c.checkDelivery(tot)
}

func (c *chaos) opts() []Option {
	o := testOpts(WithTransport(c.nw), WithMaxReconnectInterval(chaosMaxReconnect))
	if c.logs != nil {
		o = append(o, WithLogger(c.logs.logger()))
	}
	return o
}

// startNode starts an instance at addr with its reader and sender.
func (c *chaos) startNode(addr string) *chaosNode {
	n, err := New(addr, c.opts()...)
	if err != nil {
		c.t.Fatalf("seed %d: New(%s): %v", c.seed, addr, err)
	}
	cn := &chaosNode{
		n: n, addr: addr, inst: n.Instance(), stop: make(chan struct{}),
		sent: map[uint64]uint64{}, recv: map[uint64]uint64{}, gaps: map[uint64]uint64{},
	}
	c.mu.Lock()
	c.cur[addr] = cn
	c.all = append(c.all, cn)
	c.mu.Unlock()
	c.logf("start %s#%s", addr, short(cn.inst))
	me := addr + "#" + short(cn.inst)
	n.RemoteAdded(func(r Remote) { c.logf("%s: +%s#%s", me, r.Addr(), short(r.Instance())) })
	n.RemoteRemoved(func(r Remote) {
		c.mu.Lock()
		c.removed[instKey(cn.inst, r.Instance())] = true
		c.mu.Unlock()
		c.logf("%s: -%s#%s", me, r.Addr(), short(r.Instance()))
	})
	c.wg.Go(func() { c.reader(cn) })
	rng := rand.New(rand.NewPCG(uint64(c.seed), cn.inst))
	c.wg.Go(func() { c.sender(cn, rng) })
	return cn
}

// Payload: magic, sender instance, receiver instance, sequence number,
// CRC-32 of the rest. A garbled payload (a byte stream with a gap, or
// messages mixed up) is told apart from a real message, and fails the run.
const chaosMagic = 0x6368616f // "chao"

func chaosPayload(from, to, seq uint64) []byte {
	b := make([]byte, 32)
	binary.BigEndian.PutUint32(b[0:], chaosMagic)
	binary.BigEndian.PutUint64(b[4:], from)
	binary.BigEndian.PutUint64(b[12:], to)
	binary.BigEndian.PutUint64(b[20:], seq)
	binary.BigEndian.PutUint32(b[28:], crc32.ChecksumIEEE(b[:28]))
	return b
}

func parseChaosPayload(b []byte) (from, to, seq uint64, ok bool) {
	if len(b) != 32 || binary.BigEndian.Uint32(b) != chaosMagic || binary.BigEndian.Uint32(b[28:]) != crc32.ChecksumIEEE(b[:28]) {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint64(b[4:]), binary.BigEndian.Uint64(b[12:]), binary.BigEndian.Uint64(b[20:]), true
}

// sender sends numbered messages to random remotes; the numbers count per
// (sender instance, receiver instance) and advance only when Send queued.
func (c *chaos) sender(cn *chaosNode, rng *rand.Rand) {
	tick := time.NewTimer(0)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-cn.stop:
			return
		case <-c.stopSend:
			return
		}
		tick.Reset(time.Duration(20+rng.IntN(60)) * time.Millisecond)
		rs := cn.n.Remotes()
		for range min(len(rs), 1+rng.IntN(2)) {
			r := rs[rng.IntN(len(rs))]
			c.mu.Lock()
			seq := cn.sent[r.Instance()] + 1
			c.mu.Unlock()
			if err := cn.n.Send(r, chaosPayload(cn.inst, r.Instance(), seq)); err == nil {
				c.mu.Lock()
				cn.sent[r.Instance()] = seq
				c.mu.Unlock()
			}
		}
	}
}

// reader drains the instance's Inbox and checks each message: addressed to
// this instance, from the sender it claims, in order, at most once.
func (c *chaos) reader(cn *chaosNode) {
	for m := range cn.n.Inbox {
		from, to, seq, ok := parseChaosPayload(m.Payload)
		if !ok {
			c.failf("%s#%s got a garbled payload from %s#%s (%d bytes: %x)",
				cn.addr, short(cn.inst), m.From.Addr(), short(m.From.Instance()), len(m.Payload), m.Payload[:min(len(m.Payload), 40)])
			continue
		}
		c.mu.Lock()
		last := cn.recv[from]
		if seq > last {
			cn.recv[from] = seq
			cn.gaps[from] += seq - last - 1
		}
		c.mu.Unlock()
		switch {
		case to != cn.inst:
			c.failf("%s#%s got a message meant for instance %s (from %s#%s, seq %d): delivered to the wrong incarnation",
				cn.addr, short(cn.inst), short(to), m.From.Addr(), short(from), seq)
		case from != m.From.Instance():
			c.failf("%s#%s got a message from %s#%s whose payload names sender instance %s",
				cn.addr, short(cn.inst), m.From.Addr(), short(m.From.Instance()), short(from))
		case seq <= last:
			c.failf("%s#%s got seq %d from %s#%s after seq %d: duplicated or out of order",
				cn.addr, short(cn.inst), seq, m.From.Addr(), short(from), last)
		}
	}
}

// live returns the live instances in address order.
func (c *chaos) live() []*chaosNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*chaosNode
	for _, a := range c.addrs {
		if cn := c.cur[a]; cn != nil && !cn.dead {
			out = append(out, cn)
		}
	}
	return out
}

func (c *chaos) dead() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, a := range c.addrs {
		if cn := c.cur[a]; cn == nil || cn.dead {
			out = append(out, a)
		}
	}
	return out
}

func (c *chaos) pick(s []string) string { return s[c.rng.IntN(len(s))] }

// touchNode marks every pair involving addr as touched by a silent fault.
func (c *chaos) touchNode(addr string) {
	c.mu.Lock()
	for _, b := range c.addrs {
		c.touched[pairKey(addr, b)] = true
	}
	c.mu.Unlock()
}

func (c *chaos) touchPair(a, b string) {
	c.mu.Lock()
	c.touched[pairKey(a, b)] = true
	c.mu.Unlock()
}

// step runs one random fault.
func (c *chaos) step(tot *chaosTotals) {
	tot.faults.Add(1)
	live := c.live()
	a, b := c.pick(c.addrs), c.pick(c.addrs)
	for b == a {
		b = c.pick(c.addrs)
	}
	switch r := c.rng.IntN(100); {
	case r < 14: // partition into 2 or 3 groups
		groups := make([][]string, 2+c.rng.IntN(2))
		for _, x := range c.addrs {
			g := c.rng.IntN(len(groups))
			groups[g] = append(groups[g], x)
		}
		c.nw.Partition(groups...)
		c.mu.Lock()
		for i, g := range groups {
			for _, h := range groups[i+1:] {
				for _, x := range g {
					for _, y := range h {
						c.touched[pairKey(x, y)] = true
					}
				}
			}
		}
		c.mu.Unlock()
	case r < 24:
		c.nw.Heal()
	case r < 32:
		c.nw.CutLink(a, b)
		c.mu.Lock()
		c.cut[pairKey(a, b)] = true
		c.mu.Unlock()
		c.touchPair(a, b)
	case r < 38:
		c.mu.Lock()
		var k [2]string
		for x := range c.cut {
			if k == ([2]string{}) || x[0]+x[1] < k[0]+k[1] { // deterministic choice
				k = x
			}
		}
		delete(c.cut, k)
		c.mu.Unlock()
		if k != ([2]string{}) {
			c.nw.RestoreLink(k[0], k[1])
		}
	case r < 43:
		c.nw.BlackHole(a)
		c.mu.Lock()
		c.holes[a] = true
		c.mu.Unlock()
		c.touchNode(a)
	case r < 48:
		c.mu.Lock()
		delete(c.holes, a)
		c.mu.Unlock()
		c.nw.Unblackhole(a)
	case r < 53:
		c.nw.ResetLink(a, b)
	case r < 64: // crash
		if len(live) <= len(c.addrs)/2 {
			c.logf("(crash skipped: too few live)")
			return
		}
		cn := live[c.rng.IntN(len(live))]
		c.logf("CRASH %s#%s", cn.addr, short(cn.inst))
		c.nw.Kill(cn.addr)
		c.kill(cn, false)
		if c.rng.IntN(2) == 0 {
			// A quick restart, while peers behind a silent link may
			// still hold the old instance's link.
			time.Sleep(time.Duration(c.rng.IntN(300)) * time.Millisecond)
			tot.restarts.Add(1)
			c.restart(cn.addr)
		}
	case r < 70: // graceful close
		if len(live) <= len(c.addrs)/2 {
			c.logf("(close skipped: too few live)")
			return
		}
		cn := live[c.rng.IntN(len(live))]
		c.logf("CLOSE %s#%s", cn.addr, short(cn.inst))
		c.kill(cn, true)
	case r < 82: // restart a dead address
		dead := c.dead()
		if len(dead) == 0 {
			c.logf("(restart skipped: nobody dead)")
			return
		}
		tot.restarts.Add(1)
		c.restart(c.pick(dead))
	case r < 92: // CloseRemote
		var from *chaosNode
		for _, cn := range live {
			if cn.addr == a {
				from = cn
			}
		}
		if from == nil {
			c.logf("(CloseRemote skipped: %s is dead)", a)
			return
		}
		for _, r := range from.n.Remotes() {
			if r.Addr() != b {
				continue
			}
			err := from.n.CloseRemote(r)
			c.logf("CLOSEREMOTE %s#%s -> %s#%s: %v", a, short(from.inst), b, short(r.Instance()), err)
			if err == nil {
				tot.closeRemotes.Add(1)
				c.mu.Lock()
				c.apart[instKey(from.inst, r.Instance())] = true
				c.mu.Unlock()
			}
			return
		}
		c.logf("(CloseRemote skipped: %s does not know %s)", a, b)
	default: // latency
		d := time.Duration(c.rng.IntN(30)) * time.Millisecond
		j := time.Duration(c.rng.IntN(20)) * time.Millisecond
		if c.rng.IntN(2) == 0 {
			c.nw.SetLatency(d, j)
		} else {
			c.nw.SetLinkLatency(a, b, d, j)
		}
	}
}

// kill stops an instance: gracefully (Close) or as a crash (the network
// already killed its address; close(false) stops the process's goroutines
// without a goodbye).
func (c *chaos) kill(cn *chaosNode, graceful bool) {
	c.mu.Lock()
	cn.dead = true
	c.mu.Unlock()
	close(cn.stop)
	start := time.Now()
	cn.n.close(graceful)
	if d := time.Since(start); d > testHealthy {
		c.failf("closing %s#%s took %v", cn.addr, short(cn.inst), d)
	}
}

// restart starts a new instance at addr; it joins through a random live
// node, retrying (as a deployment's seed list would) until it is in.
func (c *chaos) restart(addr string) {
	cn := c.startNode(addr)
	live := c.live()
	rng := rand.New(rand.NewPCG(uint64(c.seed), cn.inst^1))
	c.wg.Go(func() {
		for {
			var others []string
			for _, x := range live {
				if x != cn {
					others = append(others, x.addr)
				}
			}
			if len(others) == 0 {
				return
			}
			to := others[rng.IntN(len(others))]
			err := cn.n.Add(to)
			c.logf("%s#%s joins via %s: %v", addr, short(cn.inst), to, err)
			if err == nil || cn.n.isClosed() {
				return
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-cn.stop:
				return
			}
			live = c.live()
		}
	})
}

// checkMembership: every live instance knows exactly the other live
// instances, except those it is apart from (CloseRemote between the two
// current instances, in either direction: the tombstones on both sides
// keep them apart until an explicit Add or a restart).
func (c *chaos) checkMembership(tot *chaosTotals) {
	for _, f := range c.membershipDiff(tot) {
		c.failf("%s", f)
	}
}

func (c *chaos) membershipOK() bool { return len(c.membershipDiff(nil)) == 0 }

// membershipDiff lists the live instances whose view is wrong.
func (c *chaos) membershipDiff(tot *chaosTotals) []string {
	var out []string
	live := c.live()
	c.mu.Lock()
	apart := make(map[[2]uint64]bool, len(c.apart))
	for k, v := range c.apart {
		apart[k] = v
	}
	c.mu.Unlock()
	for _, k := range live {
		var want []string
		for _, o := range live {
			if o == k {
				continue
			}
			if apart[instKey(k.inst, o.inst)] {
				if tot != nil {
					tot.aparts.Add(1)
				}
				continue
			}
			want = append(want, o.addr+"#"+short(o.inst))
		}
		var got []string
		for _, r := range k.n.Remotes() {
			got = append(got, r.Addr()+"#"+short(r.Instance()))
		}
		if tot != nil {
			tot.membershipChecks.Add(1)
		}
		if !slices.Equal(got, want) {
			out = append(out, fmt.Sprintf("%s#%s knows %v\n\t\twant %v\n\t\tmissing %v, extra %v",
				k.addr, short(k.inst), got, want, diff(want, got), diff(got, want)))
		}
	}
	return out
}

func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// checkDelivery: between two surviving instances whose link stayed up
// from the cluster's view (neither saw a RemoteRemoved of the other, no
// CloseRemote separated them), every message Send queued arrived, none
// skipped, whatever faults touched the network: a silent fault only delays
// bytes, as TCP does. (Order and uniqueness are checked as messages
// arrive, garbling too.)
func (c *chaos) checkDelivery(tot *chaosTotals) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var delivered int64
	for _, r := range c.all {
		for _, seq := range r.recv {
			delivered += int64(seq)
		}
	}
	tot.delivered.Add(delivered)
	for _, s := range c.all {
		for _, r := range c.all {
			k := instKey(s.inst, r.inst)
			if s == r || s.dead || r.dead || c.removed[k] || c.apart[k] {
				continue
			}
			sent, got, gaps := s.sent[r.inst], r.recv[s.inst], r.gaps[s.inst]
			tot.upPairs.Add(1)
			tot.upMsgs.Add(int64(sent))
			if c.touched[pairKey(s.addr, r.addr)] {
				tot.upFaulted.Add(1)
				tot.upFaultedMsgs.Add(int64(sent))
			}
			if got != sent || gaps != 0 {
				c.failLocked("%s#%s -> %s#%s, a link that stayed up: %d queued, last received %d, %d skipped",
					s.addr, short(s.inst), r.addr, short(r.inst), sent, got, gaps)
			}
		}
	}
}

func (c *chaos) failLocked(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.trace = append(c.trace, "VIOLATION: "+msg)
	if len(c.failures) < 20 {
		c.failures = append(c.failures, msg)
	}
}

// shutdown closes every live instance, waits for the test's goroutines and
// closes the network. Leftover node goroutines fail the bubble.
func (c *chaos) shutdown() {
	for _, cn := range c.live() {
		c.mu.Lock()
		cn.dead = true
		c.mu.Unlock()
		close(cn.stop)
		cn.n.Close()
	}
	select {
	case <-c.stopSend:
	default:
		close(c.stopSend)
	}
	c.wg.Wait()
	c.nw.Close()
}

func (c *chaos) report(t *testing.T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "chaos seed %d failed; replay: go test ./cluster -run TestChaos -chaos.seed=%d -v [-chaos.log]\n", c.seed, c.seed)
	for _, f := range c.failures {
		fmt.Fprintf(&b, "  - %s\n", f)
	}
	b.WriteString("trace (virtual time):\n")
	for _, l := range c.trace {
		b.WriteString("  " + l + "\n")
	}
	if c.logs != nil {
		b.WriteString("node logs:\n" + c.logs.String())
	}
	t.Error(b.String())
}
