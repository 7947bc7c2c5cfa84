package cluster_test

import (
	"encoding/binary"
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

	"github.com/peerkit/peerkit/chaostest"
	"github.com/peerkit/peerkit/cluster"
)

// The chaos test: random schedules of faults on whole clusters, in virtual
// time, drawn and run by package chaostest. Each seed picks a cluster
// size, joins it, runs a schedule of partitions, heals, cut and reset
// links, black holes, crashes, restarts, graceful leaves, CloseRemote calls
// and latency changes while every node sends numbered messages; then it
// heals the network and checks membership and delivery: between two
// surviving instances whose link stayed up from the cluster's view
// (neither saw the other removed, no CloseRemote between them), no message
// is lost, whatever faults the network went through meanwhile, and no
// payload ever arrives garbled. A failure prints the seed, the schedule,
// the trace and the command that replays it:
//
//	go test ./cluster -run '^TestChaos$' -chaostest.seed=N [-chaostest.log]
//
// -chaostest.seeds=N runs more seeds; -chaostest.trace prints every
// seed's trace.

// chaosOptions: chaostest's default faults, cluster sizes and timing (a
// 100 ms healthy interval, a 500 ms network timeout, redials capped at
// 250 ms so that the cluster converges within the two timeouts of the
// settle time).
var chaosOptions = []chaostest.Option{chaostest.WithSeeds(200)}

const chaosHealthy = chaostest.DefaultHealthyInterval

// chaosTotals sums, over all seeds, what the checks covered, so that a
// run whose checks never bite is noticed.
type chaosTotals struct {
	delivered, upPairs       atomic.Int64 // pairs whose link stayed up, checked for loss
	upMsgs, upFaulted        atomic.Int64 // their messages; the pairs a silent fault touched
	upFaultedMsgs            atomic.Int64
	closeRemotes             atomic.Int64
	membershipChecks, aparts atomic.Int64
}

func TestChaos(t *testing.T) {
	var tot chaosTotals
	runs := &ledgers{m: map[int64]*ledger{}, tot: &tot}
	start := time.Now()
	results := chaostest.Run(t, chaostest.Test[*chaosApp]{
		Start: runs.start,
		Invariants: []chaostest.Invariant[*chaosApp]{
			{Name: "membership after the heal", Check: runs.checkMembership},
			{Name: "no loss on links that stayed up", Check: runs.checkDelivery},
		},
	}, chaosOptions...)

	var nodes, faults, restarts int
	var virtual, worst time.Duration
	for _, r := range results {
		nodes += len(r.Schedule.Nodes)
		faults += len(r.Schedule.Steps)
		restarts += r.Started - len(r.Schedule.Nodes)
		virtual += r.Virtual
		worst = max(worst, r.Quiet)
	}
	t.Logf("chaos: %d seeds, %d nodes, %d faults, %d restarts, %d CloseRemote (%d pairs kept apart), %d messages delivered; "+
		"%d pairs whose link stayed up checked for loss with %d messages (%d of the pairs, with %d messages, between addresses a silent fault touched); "+
		"last membership change after the final heal at worst %v (checked at %v); %v virtual, %v real",
		len(results), nodes, faults, restarts, tot.closeRemotes.Load(), tot.aparts.Load(),
		tot.delivered.Load(), tot.upPairs.Load(), tot.upMsgs.Load(), tot.upFaulted.Load(), tot.upFaultedMsgs.Load(),
		worst, 2*chaostest.DefaultNetworkTimeout,
		virtual.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if !t.Failed() && len(results) >= 20 {
		// The checks must have had something to check.
		if tot.upMsgs.Load() == 0 || tot.upFaultedMsgs.Load() == 0 || restarts == 0 || tot.aparts.Load() == 0 || tot.membershipChecks.Load() == 0 {
			t.Errorf("chaos schedules exercised too little: %d restarts, %+v", restarts, &tot)
		}
	}
}

// ledgers holds each seed's ledger; seeds run in parallel.
type ledgers struct {
	tot *chaosTotals
	mu  sync.Mutex
	m   map[int64]*ledger
}

func (ls *ledgers) get(seed int64) *ledger {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[seed]
	if l == nil {
		l = &ledger{seed: seed, stopSend: make(chan struct{}), removed: map[[2]uint64]bool{}, apart: map[[2]uint64]bool{}}
		ls.m[seed] = l
	}
	return l
}

// ledger is one seed's record of what was sent, received and removed.
type ledger struct {
	seed     int64
	stopSend chan struct{} // closed: every sender stops

	mu      sync.Mutex         // guards the fields below
	all     []*chaosApp        // every instance ever started
	removed map[[2]uint64]bool // instance pairs where one saw the other removed
	apart   map[[2]uint64]bool // instance pairs closed on purpose (CloseRemote)
}

// chaosApp is one instance: a node, a reader checking every message and
// a sender of numbered messages.
type chaosApp struct {
	n    *cluster.Node
	h    *chaostest.Host
	l    *ledger
	addr string
	inst uint64
	stop chan struct{} // closed by Close
	wg   sync.WaitGroup

	// guarded by l.mu
	dead bool
	sent map[uint64]uint64 // receiver instance: last sequence number queued by Send
	recv map[uint64]uint64 // sender instance: last sequence number received
	gaps map[uint64]uint64 // sender instance: messages skipped
}

func (a *chaosApp) Node() *cluster.Node { return a.n }

func (a *chaosApp) String() string { return a.addr + "#" + short(a.inst) }

// Close stops the sender, closes the node (its Inbox ends the reader) and
// checks that closing was quick, even while faults hold the links.
func (a *chaosApp) Close() error {
	a.l.mu.Lock()
	a.dead = true
	a.l.mu.Unlock()
	close(a.stop)
	start := time.Now()
	err := a.n.Close()
	if d := time.Since(start); d > chaosHealthy {
		a.h.Errorf("closing %s took %v", a, d)
	}
	a.wg.Wait()
	return err
}

func (ls *ledgers) start(h *chaostest.Host) (*chaosApp, error) {
	n, err := cluster.New(h.Addr, h.Options...)
	if err != nil {
		return nil, err
	}
	l := ls.get(h.Seed)
	a := &chaosApp{
		n: n, h: h, l: l, addr: h.Addr, inst: n.Instance(), stop: make(chan struct{}),
		sent: map[uint64]uint64{}, recv: map[uint64]uint64{}, gaps: map[uint64]uint64{},
	}
	l.mu.Lock()
	l.all = append(l.all, a)
	l.mu.Unlock()
	n.OnEvent(func(e cluster.Event) {
		if e.Kind != cluster.EventRemoved {
			return
		}
		k := instKey(a.inst, e.Remote.Instance())
		l.mu.Lock()
		l.removed[k] = true
		if e.Reason == cluster.ReasonClosed { // this node's CloseRemote
			l.apart[k] = true
			ls.tot.closeRemotes.Add(1)
		}
		l.mu.Unlock()
	})
	a.wg.Go(a.reader)
	rng := rand.New(rand.NewPCG(uint64(h.Seed), a.inst))
	a.wg.Go(func() { a.sender(rng) })
	return a, nil
}

func instKey(a, b uint64) [2]uint64 {
	if b < a {
		a, b = b, a
	}
	return [2]uint64{a, b}
}

func pairKey(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

func short(inst uint64) string { return fmt.Sprintf("%04x", inst&0xffff) }

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
func (a *chaosApp) sender(rng *rand.Rand) {
	// Each round waits first: a timer made already due (NewTimer(0)) is run
	// by the goroutine that selects on it, which the race detector does not
	// survive in a bubble (internal/racerepro).
	pause := func() time.Duration { return time.Duration(20+rng.IntN(60)) * time.Millisecond }
	tick := time.NewTimer(pause())
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-a.stop:
			return
		case <-a.l.stopSend:
			return
		}
		tick.Reset(pause())
		rs := a.n.Remotes()
		for range min(len(rs), 1+rng.IntN(2)) {
			r := rs[rng.IntN(len(rs))]
			a.l.mu.Lock()
			seq := a.sent[r.Instance()] + 1
			a.l.mu.Unlock()
			if err := a.n.Send(r, chaosPayload(a.inst, r.Instance(), seq)); err == nil {
				a.l.mu.Lock()
				a.sent[r.Instance()] = seq
				a.l.mu.Unlock()
			}
		}
	}
}

// reader drains the instance's Inbox and checks each message: addressed to
// this instance, from the sender it claims, in order, at most once.
func (a *chaosApp) reader() {
	for m := range a.n.Inbox {
		from, to, seq, ok := parseChaosPayload(m.Payload)
		if !ok {
			a.h.Errorf("%s got a garbled payload from %s#%s (%d bytes: %x)",
				a, m.From.Addr(), short(m.From.Instance()), len(m.Payload), m.Payload[:min(len(m.Payload), 40)])
			continue
		}
		a.l.mu.Lock()
		last := a.recv[from]
		if seq > last {
			a.recv[from] = seq
			a.gaps[from] += seq - last - 1
		}
		a.l.mu.Unlock()
		switch {
		case to != a.inst:
			a.h.Errorf("%s got a message meant for instance %s (from %s#%s, seq %d): delivered to the wrong incarnation",
				a, short(to), m.From.Addr(), short(from), seq)
		case from != m.From.Instance():
			a.h.Errorf("%s got a message from %s#%s whose payload names sender instance %s",
				a, m.From.Addr(), short(m.From.Instance()), short(from))
		case seq <= last:
			a.h.Errorf("%s got seq %d from %s#%s after seq %d: duplicated or out of order",
				a, seq, m.From.Addr(), short(from), last)
		}
	}
}

// checkMembership: every live instance knows exactly the other live
// instances, except those it is apart from (CloseRemote between the two
// current instances, in either direction: the tombstones on both sides
// keep them apart until an explicit Add or a restart).
func (ls *ledgers) checkMembership(live []*chaosApp) error {
	if len(live) == 0 {
		return nil
	}
	l := live[0].l
	l.mu.Lock()
	apart := maps(l.apart)
	l.mu.Unlock()
	var wrong []string
	for _, k := range live {
		var want []string
		for _, o := range live {
			if o == k {
				continue
			}
			if apart[instKey(k.inst, o.inst)] {
				ls.tot.aparts.Add(1)
				continue
			}
			want = append(want, o.String())
		}
		var got []string
		for _, r := range k.n.Remotes() {
			got = append(got, r.Addr()+"#"+short(r.Instance()))
		}
		ls.tot.membershipChecks.Add(1)
		if !slices.Equal(got, want) {
			wrong = append(wrong, fmt.Sprintf("\n\t%s knows %v\n\t\twant %v\n\t\tmissing %v, extra %v",
				k, got, want, diff(want, got), diff(got, want)))
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("%d of %d live instances have the wrong view:%s", len(wrong), len(live), strings.Join(wrong, ""))
	}
	return nil
}

func maps(m map[[2]uint64]bool) map[[2]uint64]bool {
	out := make(map[[2]uint64]bool, len(m))
	for k, v := range m {
		out[k] = v
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

// checkDelivery stops the senders, lets what is queued arrive, then
// checks: between two surviving instances whose link stayed up from the
// cluster's view (neither saw a RemoteRemoved of the other, no CloseRemote
// separated them), every message Send queued arrived, none skipped,
// whatever faults touched the network: a silent fault only delays bytes,
// as TCP does. (Order, uniqueness and garbling are checked as messages
// arrive.)
func (ls *ledgers) checkDelivery(live []*chaosApp) error {
	if len(live) == 0 {
		return nil
	}
	l := live[0].l
	close(l.stopSend)
	time.Sleep(3 * chaosHealthy)
	synctest.Wait()
	touched, err := touchedPairs(l.seed)
	if err != nil {
		return err
	}
	ls.mu.Lock()
	delete(ls.m, l.seed) // the last check: let the seed's nodes go
	ls.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	tot := ls.tot
	var delivered int64
	for _, r := range l.all {
		for _, seq := range r.recv {
			delivered += int64(seq)
		}
	}
	tot.delivered.Add(delivered)
	var lost []string
	for _, s := range l.all {
		for _, r := range l.all {
			k := instKey(s.inst, r.inst)
			if s == r || s.dead || r.dead || l.removed[k] || l.apart[k] {
				continue
			}
			sent, got, gaps := s.sent[r.inst], r.recv[s.inst], r.gaps[s.inst]
			tot.upPairs.Add(1)
			tot.upMsgs.Add(int64(sent))
			if touched[pairKey(s.addr, r.addr)] {
				tot.upFaulted.Add(1)
				tot.upFaultedMsgs.Add(int64(sent))
			}
			if got != sent || gaps != 0 {
				lost = append(lost, fmt.Sprintf("\n\t%s -> %s: %d queued, last received %d, %d skipped", s, r, sent, got, gaps))
			}
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("%d links that stayed up lost messages:%s", len(lost), strings.Join(lost, ""))
	}
	return nil
}

// touchedPairs returns the address pairs a silent fault (a partition
// between them, a cut link, a black hole at either) touched in seed's
// schedule, for the figures.
func touchedPairs(seed int64) (map[[2]string]bool, error) {
	s, err := chaostest.NewSchedule(seed, chaosOptions...)
	if err != nil {
		return nil, err
	}
	touched := map[[2]string]bool{}
	for _, st := range s.Steps {
		switch st.Kind {
		case chaostest.Partition:
			for i, g := range st.Groups {
				for _, h := range st.Groups[i+1:] {
					for _, x := range g {
						for _, y := range h {
							touched[pairKey(x, y)] = true
						}
					}
				}
			}
		case chaostest.CutLink:
			touched[pairKey(st.Addr, st.Peer)] = true
		case chaostest.BlackHole:
			for _, b := range s.Nodes {
				touched[pairKey(st.Addr, b)] = true
			}
		}
	}
	return touched, nil
}
