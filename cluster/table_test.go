package cluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerkit/peerkit/internal/wire"
)

// The membership table's rules, driven by plain events: no transport, no
// goroutines, no clock (PROTOCOL.md, sections 4.4 and 6).

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// tableHarness is a table with small limits and a fixed backoff, and a
// record of the actions it took.
type tableHarness struct {
	t   *testing.T
	tb  *table
	log []string // actions, as short strings
}

func newHarness(t *testing.T, tweak ...func(*tableConfig)) *tableHarness {
	cfg := tableConfig{
		self:              wire.Peer{Addr: "m:1", Instance: 1},
		maxRemotes:        4,
		maxPeerList:       8,
		maxTombstones:     2,
		tombstoneTTL:      time.Minute,
		reconnectAttempts: 0,
		backoff:           func(i int) time.Duration { return time.Duration(i+1) * time.Second },
		pick:              rand.N[int],
		newPeer: func(addr string, instance uint64, meta []byte) *peer {
			return newPeer(nil, addr, instance, meta)
		},
		wants: func() (bool, bool) { return true, false },
	}
	for _, f := range tweak {
		f(&cfg)
	}
	return &tableHarness{t: t, tb: newTable(cfg)}
}

// record takes the table's actions into the log.
func (h *tableHarness) record() []string {
	var got []string
	for _, a := range h.tb.take() {
		var s string
		switch a.kind {
		case actDial:
			s = fmt.Sprintf("dial %s %s", a.addr, [...]string{"explicit", "gossip", "reconnect", "verify"}[a.dial])
		case actVerify:
			s = "verify " + a.addr
		case actLeave:
			s = "leave " + a.link.peer.addr
		case actDrop:
			s = fmt.Sprintf("drop %s#%d (%v)", a.link.peer.addr, a.link.peer.instance, a.cause)
		case actEvent:
			p := a.event.Remote.p
			switch a.event.Kind {
			case EventAdded:
				s = fmt.Sprintf("+%s#%d", p.addr, p.instance)
			case EventRemoved:
				s = fmt.Sprintf("-%s#%d %s", p.addr, p.instance, a.event.Reason)
			case EventMetaChanged:
				s = fmt.Sprintf("meta %s#%d %q", p.addr, p.instance, *p.meta.Load())
			}
		case actArm:
			s = fmt.Sprintf("arm %s %v", a.addr, a.after)
		case actView:
			s = "view " + a.link.peer.addr
		case actGiveUp:
			s = "give up " + a.addr
		case actUp, actRemovalNoted:
			continue // wakes waiters, or feeds Stats: nothing to decide
		}
		got = append(got, s)
	}
	h.log = append(h.log, got...)
	return got
}

func hello(addr string, instance uint64, flags byte) *wire.Hello {
	return &wire.Hello{Version: wire.Version, Addr: addr, Instance: instance, Flags: flags}
}

func mkLink(p *peer) *link { return &link{peer: p} }

// admit is a hello arriving on an accepted conn.
func (h *tableHarness) admit(addr string, instance uint64, flags byte) (string, []string) {
	_, code, _ := h.tb.admit(hello(addr, instance, flags), mkLink, t0)
	return wire.VerdictName(code), h.record()
}

// up brings a link to addr#instance up through an accepted conn.
func (h *tableHarness) up(addr string, instance uint64) *link {
	h.t.Helper()
	l, code, reason := h.tb.admit(hello(addr, instance, 0), mkLink, t0)
	if code != wire.VerdictAccept {
		h.t.Fatalf("admit %s#%d: %s (%s)", addr, instance, wire.VerdictName(code), reason)
	}
	h.record()
	return l
}

func (h *tableHarness) state(addr string) string {
	e := h.tb.remotes[addr]
	if e == nil {
		return "none"
	}
	return e.state().String()
}

func expect(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: actions\n  %s\nwant\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// Admission, in the order of PROTOCOL.md section 4.4.
func TestTableAdmission(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(h *tableHarness)
		addr    string
		inst    uint64
		flags   byte
		verdict string
		actions []string
	}{
		{"accept", nil, "a:1", 10, 0, "accept", []string{"+a:1#10"}},
		{"closing", func(h *tableHarness) { h.tb.close(true, t0) }, "a:1", 10, 0, "closing", nil},
		{"own address", nil, "m:1", 10, 0, "self", nil},
		{"tombstoned", func(h *tableHarness) { h.tb.tombstone("a:1", 10, t0) }, "a:1", 10, 0, "gone", nil},
		{"tombstoned, explicit", func(h *tableHarness) { h.tb.tombstone("a:1", 10, t0) }, "a:1", 10, wire.FlagExplicit, "accept", []string{"+a:1#10"}},
		{"tombstone of another instance", func(h *tableHarness) { h.tb.tombstone("a:1", 9, t0) }, "a:1", 10, 0, "accept", []string{"+a:1#10"}},
		{"live, same instance", func(h *tableHarness) { h.up("a:1", 10) }, "a:1", 10, 0, "duplicate", nil},
		{"live, another instance: verify", func(h *tableHarness) { h.up("a:1", 10) }, "a:1", 11, 0, "conflict", []string{"verify a:1"}},
		{"simultaneous dial, dialer's address greater", func(h *tableHarness) { h.tb.connect("z:1", dialExplicit, t0) }, "z:1", 10, 0, "duplicate", nil},
		{"simultaneous dial, dialer's address smaller", func(h *tableHarness) { h.tb.connect("a:1", dialExplicit, t0) }, "a:1", 10, 0, "accept", []string{"+a:1#10"}},
		{"remote limit", func(h *tableHarness) {
			for i := range 4 {
				h.up(fmt.Sprintf("r%d:1", i), uint64(20+i))
			}
		}, "a:1", 10, 0, "busy", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			if c.setup != nil {
				c.setup(h)
				h.record()
			}
			verdict, acts := h.admit(c.addr, c.inst, c.flags)
			if verdict != c.verdict {
				t.Fatalf("verdict %s, want %s", verdict, c.verdict)
			}
			expect(t, c.name, acts, c.actions...)
		})
	}
}

// The dialer's side: a dial answered by a new instance replaces the old
// link; one answered by the instance already linked (an alias) is not
// wanted.
func TestTableDialed(t *testing.T) {
	h := newHarness(t)
	old := h.up("a:1", 10)
	if h.tb.connect("a:1", dialVerify, t0) != connectDial {
		t.Fatal("a verify dial does not go ahead while a link is up")
	}
	if l := h.tb.dialed(hello("a:1", 10, 0), mkLink, t0); l != nil {
		t.Fatal("a second link to the same instance was made live")
	}
	l := h.tb.dialed(hello("a:1", 11, 0), mkLink, t0)
	if l == nil || h.tb.remotes["a:1"].link != l {
		t.Fatal("the new instance's link is not live")
	}
	expect(t, "replace", h.record(), "-a:1#10 replaced", "drop a:1#10 (replaced by a new instance)", "+a:1#11")
	if old.peer.link.Load() != nil || l.peer.link.Load() != l {
		t.Fatal("the peers' live-link pointers were not updated")
	}
	h.tb.dialDone("a:1", dialVerify, nil, wire.VerdictAccept, hello("a:1", 11, 0), t0)
	if h.state("a:1") != "up" {
		t.Fatalf("state %s after the verify dial ended", h.state("a:1"))
	}
	// A reconnect of the same instance keeps its Remote.
	h.tb.linkDown(l, errSilent, t0)
	h.record()
	if l2 := h.tb.dialed(hello("a:1", 11, 0), mkLink, t0); l2 == nil || l2.peer != l.peer {
		t.Fatal("a reconnect of the same instance made a new Remote")
	}
}

// A lost remote is redialled with backoff until it is back, given up, or
// closed; a gossip about it redials at once; a stale timer does nothing.
func TestTableRedial(t *testing.T) {
	h := newHarness(t, func(c *tableConfig) { c.reconnectAttempts = 2 })
	l := h.up("a:1", 10)
	if !h.tb.linkDown(l, errSilent, t0) {
		t.Fatal("a live link going down did not lose its remote")
	}
	expect(t, "lost", h.record(), "-a:1#10 lost", "arm a:1 1s")
	if h.state("a:1") != "backoff" {
		t.Fatalf("state %s, want backoff", h.state("a:1"))
	}
	gen := h.tb.remotes["a:1"].timer
	h.tb.timerFired("a:1", gen)
	expect(t, "timer", h.record(), "dial a:1 reconnect")
	if h.state("a:1") != "connecting" {
		t.Fatalf("state %s, want connecting", h.state("a:1"))
	}
	h.tb.timerFired("a:1", gen) // stale
	expect(t, "stale timer", h.record())
	h.tb.dialDone("a:1", dialReconnect, errors.New("refused"), 0, nil, t0)
	expect(t, "failed redial", h.record(), "arm a:1 2s")
	// A third node sees it up: redial now, not at the timer.
	h.tb.gossip([]wire.Peer{{Addr: "a:1", Instance: 10}}, t0)
	expect(t, "gossip", h.record(), "dial a:1 reconnect")
	h.tb.dialDone("a:1", dialReconnect, errors.New("refused"), 0, nil, t0)
	expect(t, "attempts run out", h.record(), "give up a:1")
	if h.state("a:1") != "none" {
		t.Fatalf("state %s after giving up, want none", h.state("a:1"))
	}

	// Back before the timer: the timer is stale then.
	l = h.up("b:1", 20)
	h.tb.linkDown(l, errSilent, t0)
	h.record()
	gen = h.tb.remotes["b:1"].timer
	h.up("b:1", 20)
	h.tb.timerFired("b:1", gen)
	expect(t, "timer after the remote is back", h.record())

	// Verdict gone on a redial: tombstoned, redialled no more.
	l = h.tb.remotes["b:1"].link
	h.tb.linkDown(l, errSilent, t0)
	h.record()
	h.tb.timerFired("b:1", h.tb.remotes["b:1"].timer)
	h.record()
	h.tb.dialDone("b:1", dialReconnect, errGone, wire.VerdictGone, hello("b:1", 20, 0), t0)
	expect(t, "gone", h.record())
	if h.state("b:1") != "none" || !h.tb.buried("b:1", 20, t0) {
		t.Fatal("a redial answered gone left the remote redialled or unburied")
	}
}

// Goodbyes and CloseRemote tombstone the incarnation: gossip does not bring
// it back, an explicit Add does, and tombstones expire and are bounded.
func TestTableTombstones(t *testing.T) {
	h := newHarness(t)
	l := h.up("a:1", 10)
	h.tb.goodbye(l, t0)
	expect(t, "goodbye", h.record(), "-a:1#10 left")
	h.tb.gossip([]wire.Peer{{Addr: "a:1", Instance: 10}}, t0)
	expect(t, "gossip of a tombstoned incarnation", h.record())
	h.tb.gossip([]wire.Peer{{Addr: "a:1", Instance: 11}}, t0)
	expect(t, "gossip of its next incarnation", h.record(), "dial a:1 gossip")
	h.tb.dialDone("a:1", dialGossip, errors.New("refused"), 0, nil, t0)
	expect(t, "a failed gossip dial is not retried", h.record())
	if h.state("a:1") != "none" {
		t.Fatalf("state %s, want none", h.state("a:1"))
	}

	b := h.up("b:1", 20)
	if !h.tb.closeRemote(b.peer, t0) {
		t.Fatal("closeRemote of a live remote failed")
	}
	expect(t, "CloseRemote", h.record(), "-b:1#20 closed", "leave b:1")
	if h.tb.closeRemote(b.peer, t0) {
		t.Fatal("closeRemote of a closed remote succeeded")
	}
	if verdict, _ := h.admit("b:1", 20, 0); verdict != "gone" {
		t.Fatalf("hello from a closed remote: %s, want gone", verdict)
	}
	// An explicit Add clears the tombstone.
	if h.tb.connect("b:1", dialExplicit, t0) != connectDial || h.tb.buried("b:1", 20, t0) {
		t.Fatal("an explicit Add did not clear the tombstone")
	}
	// Bounded in number (2 here): the one closest to expiry goes first.
	h.tb.tombstone("x:1", 1, t0.Add(time.Second))
	h.tb.tombstone("y:1", 1, t0.Add(2*time.Second))
	if h.tb.buried("a:1", 10, t0) || !h.tb.buried("x:1", 1, t0) || !h.tb.buried("y:1", 1, t0) {
		t.Fatalf("tombstones %v: want the oldest evicted", h.tb.tombs)
	}
	// And they expire.
	h.tb.tick(t0.Add(2 * time.Minute))
	if len(h.tb.tombs) != 0 {
		t.Fatalf("tombstones %v survived their TTL", h.tb.tombs)
	}
}

// Gossip: what is dialled and what is skipped (PROTOCOL.md section 6).
func TestTableGossip(t *testing.T) {
	h := newHarness(t)
	h.up("live:1", 30)
	h.tb.connect("dialing:1", dialExplicit, t0)
	h.tb.tombstone("dead:1", 40, t0)
	h.tb.gossip([]wire.Peer{
		{Addr: "m:1", Instance: 50},       // own address
		{Addr: "other:1", Instance: 1},    // own instance
		{Addr: "", Instance: 51},          // empty
		{Addr: strings.Repeat("x", 256)},  // too long
		{Addr: "dead:1", Instance: 40},    // tombstoned
		{Addr: "live:1", Instance: 30},    // linked
		{Addr: "dialing:1", Instance: 60}, // dial in progress
		{Addr: "new:1", Instance: 70},
		{Addr: "new2:1", Instance: 71}, // the limit: live, dialing, new make 3 entries of 4
		{Addr: "new3:1", Instance: 72}, // no room
	}, t0)
	expect(t, "gossip", h.record(), "dial new:1 gossip")
	if h.tb.gossipDials != 1 {
		t.Fatalf("gossip dials %d, want 1", h.tb.gossipDials)
	}
	h.tb.dialDone("new:1", dialGossip, errors.New("refused"), 0, nil, t0)
	if h.tb.gossipDials != 0 {
		t.Fatalf("gossip dials %d after the dial ended", h.tb.gossipDials)
	}
	// A list longer than the peer-list limit: the rest is ignored.
	long := make([]wire.Peer, 20)
	for i := range long {
		long[i] = wire.Peer{Addr: fmt.Sprintf("g%02d:1", i), Instance: uint64(100 + i)}
	}
	h2 := newHarness(t, func(c *tableConfig) { c.maxRemotes = 100 })
	h2.tb.gossip(long, t0)
	if got := len(h2.record()); got != 8 {
		t.Fatalf("%d dials from a 20-entry list, want the first 8", got)
	}
}

// Closing: every link leaves (or drops, as a crash), no event is told, and
// nothing is dialled or redialled after.
func TestTableClose(t *testing.T) {
	for _, graceful := range []bool{true, false} {
		h := newHarness(t)
		h.up("a:1", 10)
		l := h.up("b:1", 20)
		h.tb.linkDown(l, errSilent, t0)
		h.record()
		gen := h.tb.remotes["b:1"].timer
		h.tb.close(graceful, t0)
		want := "leave a:1"
		if !graceful {
			want = "drop a:1#10 (node aborted)"
		}
		expect(t, "close", h.record(), want)
		h.tb.timerFired("b:1", gen)
		h.tb.gossip([]wire.Peer{{Addr: "c:1", Instance: 3}}, t0)
		if h.tb.connect("c:1", dialExplicit, t0) != connectClosed {
			t.Fatal("connect after close")
		}
		expect(t, "after close", h.record())
	}
}

// Anti-entropy sends the view to a live link drawn uniformly at random:
// every live remote is as likely as every other. (The first key of a map
// iteration is not a fair draw.)
func TestTableRandomLinkIsUniform(t *testing.T) {
	h := newHarness(t, func(c *tableConfig) { c.maxRemotes = 10 })
	live := map[*link]int{}
	for i := range 4 {
		live[h.up(fmt.Sprintf("r%d:1", i), uint64(10+i))] = 0
	}
	h.tb.connect("x:1", dialExplicit, t0) // an entry without a link
	const draws = 8000
	for range draws {
		l := h.tb.randomLink()
		if _, ok := live[l]; !ok {
			t.Fatal("picked an entry without a live link")
		}
		live[l]++
	}
	want := draws / len(live)
	for _, got := range live {
		// 15% is about eight standard deviations of a fair draw.
		if got < want*85/100 || got > want*115/100 {
			t.Fatalf("picks per live link %v, want about %d each", live, want)
		}
	}
	if l := newHarness(t).tb.randomLink(); l != nil {
		t.Fatal("picked a link where none is live")
	}
}

// Metadata: a change on a live link is an event; the same value again (as
// anti-entropy repeats it) is not; a reconnect with new metadata in its
// hello is the added event, with the new value.
func TestTableMetaChanges(t *testing.T) {
	h := newHarness(t)
	l := h.up("a:1", 10)
	h.tb.meta(l, []byte("zone=b"))
	expect(t, "change", h.record(), `meta a:1#10 "zone=b"`)
	h.tb.meta(l, []byte("zone=b"))
	expect(t, "same again", h.record())
	h.tb.linkDown(l, errSilent, t0)
	h.record()
	h2 := hello("a:1", 10, 0)
	h2.Meta = []byte("zone=c")
	l2 := h.tb.dialed(h2, mkLink, t0)
	expect(t, "reconnect", h.record(), "+a:1#10")
	if m := string(*l2.peer.meta.Load()); m != "zone=c" {
		t.Fatalf("meta %q after the reconnect, want zone=c", m)
	}
	h.tb.meta(l, []byte("stale")) // the old link is no longer live
	expect(t, "old link", h.record())
	if m := string(*l2.peer.meta.Load()); m != "zone=c" {
		t.Fatalf("a stale link's update changed the meta to %q", m)
	}
}

// The view a link is sent lists every other live link, whatever order
// links came and went in: the table's list of live entries stays in step
// with the entries.
func TestTableViewFollowsLinks(t *testing.T) {
	h := newHarness(t, func(c *tableConfig) { c.maxRemotes, c.maxPeerList = 50, 50 })
	r := rand.New(rand.NewPCG(7, 8))
	links := map[string]*link{}
	for step := range 2000 {
		addr := fmt.Sprintf("r%d:1", r.IntN(30))
		if l := links[addr]; l != nil {
			if r.IntN(2) == 0 {
				h.tb.linkDown(l, errSilent, t0)
			} else {
				h.tb.closeRemote(l.peer, t0)
			}
			delete(links, addr)
		} else if e := h.tb.remotes[addr]; e == nil || e.link == nil {
			if l, code, _ := h.tb.admit(hello(addr, uint64(step+10), 0), mkLink, t0); code == wire.VerdictAccept {
				links[addr] = l
			}
		}
		h.record()
		for addr := range links {
			var got []string
			for _, p := range h.tb.view(addr) {
				got = append(got, p.Addr)
			}
			var want []string
			for a := range links {
				if a != addr {
					want = append(want, a)
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: view for %s lists %v, want %v", step, addr, got, want)
			}
		}
	}
}
