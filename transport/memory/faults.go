package memory

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The fault methods of Network. Their semantics are described in doc.go.

type linkKey struct{ a, b string } // unordered: a <= b

func keyOf(a, b string) linkKey {
	a, b = normalize(a), normalize(b)
	if b < a {
		a, b = b, a
	}
	return linkKey{a, b}
}

type dirKey struct{ from, to string }

type latencySpec struct{ base, jitter time.Duration }

type faultState struct {
	groups     map[string]int // partition: address to group; nil when healed
	cut        map[linkKey]bool
	blackholed map[string]bool
	lat        latencySpec
	linkLat    map[linkKey]latencySpec
	bw         int64
	linkBW     map[linkKey]int64
	busy       map[dirKey]time.Time // when each direction's wire is next free
}

func newFaultState() faultState {
	return faultState{
		cut:        make(map[linkKey]bool),
		blackholed: make(map[string]bool),
		linkLat:    make(map[linkKey]latencySpec),
		linkBW:     make(map[linkKey]int64),
		busy:       make(map[dirKey]time.Time),
	}
}

// active reports whether any fault or delay is set.
func (f *faultState) active() bool {
	return f.groups != nil || len(f.cut) > 0 || len(f.blackholed) > 0 ||
		f.lat != (latencySpec{}) || len(f.linkLat) > 0 || f.bw > 0 || len(f.linkBW) > 0
}

func (f *faultState) latency(from, to string) latencySpec {
	if l, ok := f.linkLat[linkKey{min(from, to), max(from, to)}]; ok && from != "" {
		return l
	}
	return f.lat
}

func (f *faultState) bandwidth(from, to string) int64 {
	if b, ok := f.linkBW[linkKey{min(from, to), max(from, to)}]; ok && from != "" {
		return b
	}
	return f.bw
}

// silentLocked reports whether the link between from and to is silent:
// bytes between them are held, dials hang. It is symmetric. An anonymous
// end ("", from Dial) is subject only to black holes.
func (n *Network) silentLocked(from, to string) bool {
	f := &n.faults
	if f.blackholed[to] || f.blackholed[from] {
		return true
	}
	if from == "" || to == "" {
		return false
	}
	if f.cut[linkKey{min(from, to), max(from, to)}] {
		return true
	}
	return f.groups != nil && f.groups[from] != f.groups[to]
}

// route decides the fate of k bytes written now from from to to: held,
// if the link is silent (the second result), or delivered at the returned
// time (see routeLocked); the zero time, on a network without faults,
// means at once (and saves reading the clock, twice per message).
func (n *Network) route(from, to string, k int) (time.Time, bool) {
	if !n.faulty.Load() {
		return time.Time{}, false
	}
	n.lock()
	defer n.unlock()
	if n.silentLocked(from, to) {
		return time.Time{}, true
	}
	return n.routeLocked(from, to, k), false
}

// routeLocked returns when k bytes sent now from from to to arrive:
//
//	start + k/bandwidth + latency + jitter
//
// where start is now or, if the direction's wire is still busy sending
// earlier bytes (of any conn on the link), the time it becomes free; the
// wire is then busy until start + k/bandwidth. Jitter is uniform in
// [0, jitter). The pipe then delays the bytes further if needed so that
// they never overtake earlier bytes of the same conn.
func (n *Network) routeLocked(from, to string, k int) time.Time {
	at := time.Now()
	if bw := n.faults.bandwidth(from, to); bw > 0 {
		d := dirKey{from, to}
		if busy := n.faults.busy[d]; busy.After(at) {
			at = busy
		}
		at = at.Add(time.Duration(int64(k) * int64(time.Second) / bw))
		n.faults.busy[d] = at
	}
	l := n.faults.latency(from, to)
	at = at.Add(l.base)
	if l.jitter > 0 {
		at = at.Add(time.Duration(n.rng.Int64N(int64(l.jitter))))
	}
	return at
}

// update applies a fault change: change runs under the lock; then dials
// waiting on silent links re-check, conns whose link went silent start
// holding their bytes, and conns whose link healed send what they held.
func (n *Network) update(change func(), format string, args ...any) {
	n.lock()
	change()
	n.faulty.Store(n.faults.active())
	close(n.changed)
	n.changed = make(chan struct{})
	now := time.Now()
	var healed []*pair
	for p := range n.pairs {
		silent := n.silentLocked(p.from, p.to)
		switch {
		case silent && !p.holding:
			p.holding = true
			for _, q := range []*pipe{p.ab, p.ba} {
				q.lock()
				q.holdLocked(now)
				q.unlock()
			}
		case !silent && p.holding:
			healed = append(healed, p)
		}
	}
	// In a fixed order, so that the jitter drawn is the same in every run.
	slices.SortFunc(healed, func(a, b *pair) int { return cmp.Compare(a.id, b.id) })
	for _, p := range healed {
		p.holding = false
		if p.held {
			// An end closed or crashed during the silence: it gave up on
			// the held bytes, and the other end's next bytes reach a
			// socket that is gone and draw a reset (see conn.write).
			p.held = false
			p.gone.Store(true)
			for _, q := range []*pipe{p.ab, p.ba} {
				q.lock()
				q.discardHeldLocked()
				q.unlock()
			}
			continue
		}
		// As TCP retransmits after a partition: what was held leaves
		// now, in one burst per direction.
		for _, d := range []struct {
			q        *pipe
			src, dst string
		}{{p.ab, p.from, p.to}, {p.ba, p.to, p.from}} {
			d.q.lock()
			var at time.Time
			if k := d.q.heldBytesLocked(); k > 0 {
				at = n.routeLocked(d.src, d.dst, k)
			}
			d.q.releaseLocked(at)
			d.q.unlock()
		}
	}
	n.unlock()
	n.tracef(format, args...)
}

// Partition splits the network: nodes in different groups cannot talk.
// Addresses in no group form one more group together. It replaces any
// previous partition. Conns across groups go silent: bytes stall, nothing
// errors; as with TCP, they arrive after the heal unless an endpoint gave
// up and closed first (see the package documentation). Dials across
// groups hang until the heal or their context's end.
func (n *Network) Partition(groups ...[]string) {
	m := make(map[string]int)
	var desc []string
	for i, g := range groups {
		for _, a := range g {
			m[normalize(a)] = i + 1
		}
		desc = append(desc, "["+strings.Join(g, " ")+"]")
	}
	n.update(func() { n.faults.groups = m }, "partition %s", strings.Join(desc, " | "))
}

// Heal removes the partition. On the conns it silenced (and that no other
// fault keeps silent) the bytes held during it are delivered in order,
// after the link's latency counted from now; conns an end closed during
// it draw a reset at the other end's next Write. Waiting dials complete.
// Cut links and black holes are undone by RestoreLink and Unblackhole.
func (n *Network) Heal() {
	n.update(func() { n.faults.groups = nil }, "heal")
}

// CutLink silently cuts the link between a and b, in both directions, as a
// partition of just those two nodes would: bytes stall, nothing errors; as
// with TCP, they arrive after RestoreLink unless an endpoint gave up and
// closed first. Dials between a and b hang until then.
func (n *Network) CutLink(a, b string) {
	n.update(func() { n.faults.cut[keyOf(a, b)] = true }, "cut %s <-> %s", a, b)
}

// RestoreLink undoes CutLink: as Heal does for a partition, it delivers
// the bytes held on the link's conns, in order, after the link's latency
// counted from now, unless another fault keeps the link silent.
func (n *Network) RestoreLink(a, b string) {
	n.update(func() { delete(n.faults.cut, keyOf(a, b)) }, "restore %s <-> %s", a, b)
}

// ResetLink resets every existing conn between a and b (dialled either
// way): both ends fail at once with ErrConnReset. New dials work.
func (n *Network) ResetLink(a, b string) {
	k := keyOf(a, b)
	n.lock()
	ps := n.takePairsLocked(func(p *pair) bool { return keyOf(p.from, p.to) == k })
	n.unlock()
	for _, p := range ps {
		p.reset(ErrConnReset)
	}
	n.tracef("reset %s <-> %s (%d conns)", a, b, len(ps))
}

// Kill crashes the node at addr: every conn of it (dialled from it with
// DialFrom, or to it) fails at once on both sides with ErrConnReset (on a
// silent link, the far side sees the reset only at its first Write after
// the link heals), its
// listener closes, dials to addr are refused, and dials from addr (its
// crashed process's goroutines, still running in a test) fail with
// ErrHostDown, until something listens at addr again: a restarted node
// listens first, then dials.
func (n *Network) Kill(addr string) {
	a := normalize(addr)
	n.lock()
	n.killed[a] = true
	l := n.listeners[a]
	if l != nil {
		l.closeLocked()
	}
	// A crash is seen at once where the link carries bytes; across a
	// silent link only when it heals.
	var quiet []*conn
	for p := range n.pairs {
		if (p.from == a || p.to == a) && n.silentLocked(p.from, p.to) {
			if p.from == a {
				quiet = append(quiet, p.client)
			}
			if p.to == a {
				quiet = append(quiet, p.server)
			}
		}
	}
	ps := n.takePairsLocked(func(p *pair) bool {
		return (p.from == a || p.to == a) && !n.silentLocked(p.from, p.to)
	})
	close(n.changed)
	n.changed = make(chan struct{})
	n.unlock()
	if l != nil {
		l.drain(nil)
	}
	for _, p := range ps {
		p.reset(ErrConnReset)
	}
	for _, c := range quiet {
		c.Close()
	}
	n.tracef("kill %s (%d conns reset, %d behind silent links)", addr, len(ps), len(quiet))
}

// BlackHole makes the node at addr silent: its conns stop carrying bytes
// in both directions (anonymous ones too), without any error, and dials to
// or from it hang. Bytes stall, nothing errors; as with TCP, they arrive
// after Unblackhole unless an endpoint gave up and closed first.
func (n *Network) BlackHole(addr string) {
	n.update(func() { n.faults.blackholed[normalize(addr)] = true }, "blackhole %s", addr)
}

// Unblackhole undoes BlackHole: as Heal does for a partition, it delivers
// the bytes held on the node's conns, in order, after the links' latency
// counted from now, unless another fault keeps a link silent.
func (n *Network) Unblackhole(addr string) {
	n.update(func() { delete(n.faults.blackholed, normalize(addr)) }, "unblackhole %s", addr)
}

// SetLatency sets the one-way latency of every link without its own
// (SetLinkLatency), plus a random jitter uniform in [0, jitter). Bytes of
// one conn keep their order whatever the jitter. It applies to bytes
// written from now on; a dial takes twice the base latency.
func (n *Network) SetLatency(d, jitter time.Duration) {
	n.update(func() { n.faults.lat = latencySpec{max(d, 0), max(jitter, 0)} },
		"latency %v jitter %v", d, jitter)
}

// SetLinkLatency sets the one-way latency and jitter between a and b (both
// directions), overriding SetLatency for that link.
func (n *Network) SetLinkLatency(a, b string, d, jitter time.Duration) {
	n.update(func() { n.faults.linkLat[keyOf(a, b)] = latencySpec{max(d, 0), max(jitter, 0)} },
		"latency %s <-> %s %v jitter %v", a, b, d, jitter)
}

// SetBandwidth limits every link without its own limit (SetLinkBandwidth)
// to bytesPerSecond in each direction; 0 or less means unlimited. The
// limit is shared by all conns on a link and shows as a serialisation
// delay: k bytes occupy the link's direction for k/bytesPerSecond.
func (n *Network) SetBandwidth(bytesPerSecond int64) {
	n.update(func() { n.faults.bw = max(bytesPerSecond, 0) }, "bandwidth %d B/s", bytesPerSecond)
}

// SetLinkBandwidth limits the link between a and b to bytesPerSecond in
// each direction (0 or less: unlimited), overriding SetBandwidth.
func (n *Network) SetLinkBandwidth(a, b string, bytesPerSecond int64) {
	n.update(func() { n.faults.linkBW[keyOf(a, b)] = max(bytesPerSecond, 0) },
		"bandwidth %s <-> %s %d B/s", a, b, bytesPerSecond)
}

// SetSeed reseeds the random source (see WithSeed).
func (n *Network) SetSeed(seed int64) {
	n.lock()
	n.rng = newRand(seed)
	n.unlock()
	n.tracef("seed %d", seed)
}

// String describes the active faults, for test logs.
func (n *Network) String() string {
	n.lock()
	defer n.unlock()
	f := &n.faults
	return fmt.Sprintf("memory.Network{listeners: %d, conns: %d, partitioned: %v, cut: %d, blackholed: %d, latency: %v±%v, bandwidth: %d}",
		len(n.listeners), len(n.pairs), f.groups != nil, len(f.cut), len(f.blackholed), f.lat.base, f.lat.jitter, f.bw)
}
