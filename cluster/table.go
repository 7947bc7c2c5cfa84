package cluster

import (
	"bytes"
	"cmp"
	"slices"
	"time"

	"github.com/peerkit/peerkit/internal/wire"
)

// table is the membership table and every remote's lifecycle (PROTOCOL.md,
// "Admission" and "Control messages"): which remotes are up, connecting or
// waiting to be redialled, what a goodbye leaves behind (tombstones), which
// gossip is dialled, who wins a simultaneous dial, when a claim of a live
// address is checked by dialling it back, and when a lost remote is given
// up. It has no I/O, no goroutines and no clock: each method is one event,
// given the time it happened where that matters, and appends to out what
// the node must do about it. The node holds its lock around each event and
// carries the actions out (see Node.apply).
type table struct {
	cfg         tableConfig
	closing     bool
	remotes     map[string]*entry
	live        []wire.Peer // the entries with a live link, each at its liveAt
	tombs       map[string]tombstone
	gossipDials int      // dials in progress because gossip named the address
	timers      uint64   // the last redial timer generation handed out
	out         []action // what to do, in order; taken by take
}

// tableConfig holds the limits and the pluggable parts of a table.
type tableConfig struct {
	self              wire.Peer
	maxRemotes        int
	maxPeerList       int
	maxTombstones     int
	tombstoneTTL      time.Duration
	reconnectAttempts int // 0: redial forever
	// backoff is the wait before redial number i (0 for the first).
	backoff func(i int) time.Duration
	// pick returns a uniformly random integer in [0, n).
	pick func(n int) int
	// newPeer makes the Remote of an incarnation first seen.
	newPeer func(addr string, instance uint64, meta []byte) *peer
	// wants reports whether anyone listens to membership events, and
	// whether they want the membership with each.
	wants func() (listened, snapshot bool)
}

// State is where a remote is in its lifecycle, as Stats reports it.
type State uint8

// Remote lifecycle states. A remote the node has no entry for (never
// known, given up on, or closed) has none of them.
const (
	StateConnecting State = iota + 1 // a dial or handshake is in progress
	StateUp                          // a link is live
	StateBackoff                     // lost ungracefully; waiting to redial
)

// String returns the state's name: "connecting", "up" or "backoff".
func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateUp:
		return "up"
	case StateBackoff:
		return "backoff"
	}
	return "unknown"
}

// entry is the table's record of one remote address. It exists while a
// link is up, a dial is in progress, or the remote is lost and waiting to
// be redialled.
type entry struct {
	addr    string
	peer    *peer // the last incarnation seen, kept across reconnects
	link    *link // the live link, or nil
	liveAt  int   // with a link, its index in table.live
	dialing bool  // a dial (of any kind) is in progress
	lost    bool  // lost ungracefully: redialled until up, closed or given up
	redials int   // redials started since it was lost
	timer   uint64
	since   time.Time // when the state last changed
}

func (e *entry) state() State {
	switch {
	case e.link != nil:
		return StateUp
	case e.dialing:
		return StateConnecting
	default:
		return StateBackoff
	}
}

// tombstone remembers a remote that left on purpose, so that gossip does
// not bring it back.
type tombstone struct {
	instance uint64
	expires  time.Time
}

// actionKind says what an action asks the node to do.
type actionKind uint8

const (
	actDial         actionKind = iota + 1 // dial addr as dial (the table registered it)
	actVerify                             // dial addr back to check a claim on it
	actLeave                              // close link gracefully: queued messages, then a goodbye
	actDrop                               // shut link down at once, for cause
	actEvent                              // tell the callbacks event
	actArm                                // arm redial timer gen for addr, to fire after
	actView                               // send the view to link (anti-entropy)
	actGiveUp                             // addr was lost and is redialled no more
	actUp                                 // a link to addr came up (wakes waiters)
	actRemovalNoted                       // keep event in Stats' recent removals
)

// action is one thing the node must do. Which fields are set depends on
// kind.
type action struct {
	kind    actionKind
	addr    string
	dial    dialKind
	link    *link
	cause   error
	after   time.Duration
	gen     uint64
	event   Event
	remotes []Remote // with actEvent, if snapshots are wanted
}

func newTable(cfg tableConfig) *table {
	return &table{cfg: cfg, remotes: make(map[string]*entry), tombs: make(map[string]tombstone)}
}

// take returns the actions of the events so far and clears them.
func (t *table) take() []action {
	out := t.out
	t.out = nil
	return out
}

func (t *table) do(a action) { t.out = append(t.out, a) }

// entry returns the entry for addr, creating it.
func (t *table) entry(addr string, now time.Time) *entry {
	e := t.remotes[addr]
	if e == nil {
		e = &entry{addr: addr, since: now}
		t.remotes[addr] = e
	}
	return e
}

// gc forgets e if nothing holds it any more.
func (t *table) gc(e *entry) {
	if e.link == nil && !e.dialing && !e.lost && t.remotes[e.addr] == e {
		delete(t.remotes, e.addr)
	}
}

// emit queues a membership event, if anyone listens.
func (t *table) emit(ev Event) {
	if t.closing {
		return
	}
	listened, snapshot := t.cfg.wants()
	if !listened {
		return
	}
	a := action{kind: actEvent, event: ev}
	if snapshot {
		a.remotes = t.members()
	}
	t.do(a)
}

// attach makes l the live link of e. It publishes l to its peer too, for
// Send's lock-free path.
func (t *table) attach(e *entry, l *link, now time.Time) {
	e.link, e.peer, e.since = l, l.peer, now
	e.lost, e.redials, e.timer = false, 0, 0
	e.liveAt = len(t.live)
	t.live = append(t.live, wire.Peer{Addr: e.addr, Instance: l.peer.instance})
	delete(t.tombs, e.addr)
	l.peer.link.Store(l)
	// The remote's first frame from us is our view of the cluster.
	l.first = &wire.Control{Peers: t.view(e.addr)}
	t.emit(Event{Kind: EventAdded, Remote: Remote{l.peer}})
	t.do(action{kind: actUp, addr: e.addr})
}

// detach removes e's live link from the membership, for reason (and err,
// if it was lost), and returns it.
func (t *table) detach(e *entry, now time.Time, reason Reason, err error) *link {
	l := e.link
	e.link, e.since = nil, now
	l.peer.link.Store(nil)
	last := len(t.live) - 1
	if e.liveAt != last {
		t.live[e.liveAt] = t.live[last]
		t.remotes[t.live[last].Addr].liveAt = e.liveAt
	}
	t.live[last] = wire.Peer{}
	t.live = t.live[:last]
	ev := Event{Kind: EventRemoved, Remote: Remote{l.peer}, Reason: reason, Err: err}
	if !t.closing {
		t.do(action{kind: actRemovalNoted, event: ev})
	}
	t.emit(ev)
	return l
}

// peerFor returns the incarnation h describes, reusing e's if the instance
// is the same (a reconnect keeps its Remote value).
func (t *table) peerFor(e *entry, h *wire.Hello) *peer {
	if e.peer != nil && e.peer.instance == h.Instance {
		t.setMeta(e.peer, h.Meta, false)
		return e.peer
	}
	return t.cfg.newPeer(h.Addr, h.Instance, h.Meta)
}

// members is the membership snapshot, sorted by address.
func (t *table) members() []Remote {
	rs := make([]Remote, 0, len(t.remotes))
	for _, e := range t.remotes {
		if e.link != nil {
			rs = append(rs, Remote{e.peer})
		}
	}
	slices.SortFunc(rs, func(a, b Remote) int { return cmp.Compare(a.p.addr, b.p.addr) })
	return rs
}

// links returns every live link.
func (t *table) links() []*link {
	ls := make([]*link, 0, len(t.remotes))
	for _, e := range t.remotes {
		if e.link != nil {
			ls = append(ls, e.link)
		}
	}
	return ls
}

// numLinks counts live links.
func (t *table) numLinks() int {
	c := 0
	for _, e := range t.remotes {
		if e.link != nil {
			c++
		}
	}
	return c
}

// up reports whether addr has a live link.
func (t *table) up(addr string) bool {
	e := t.remotes[addr]
	return e != nil && e.link != nil
}

// view lists the peers with live links, except the one named, at most
// maxPeerList of them.
func (t *table) view(except string) []wire.Peer {
	skip := -1
	if e := t.remotes[except]; e != nil && e.link != nil {
		skip = e.liveAt
	}
	n := len(t.live)
	if skip >= 0 {
		n--
	}
	if n > t.cfg.maxPeerList {
		// More than a list holds: a random subset, as the map gives it.
		ps := make([]wire.Peer, 0, t.cfg.maxPeerList)
		for _, e := range t.remotes {
			if e.link != nil && e.addr != except && len(ps) < t.cfg.maxPeerList {
				ps = append(ps, wire.Peer{Addr: e.addr, Instance: e.peer.instance})
			}
		}
		return ps
	}
	ps := make([]wire.Peer, 0, n)
	if skip < 0 {
		return append(ps, t.live...)
	}
	return append(append(ps, t.live[:skip]...), t.live[skip+1:]...)
}

// setMeta makes meta p's metadata, telling the callbacks if it changed
// while p is connected (up: p's link is live).
func (t *table) setMeta(p *peer, meta []byte, up bool) {
	old := p.meta.Load()
	if old != nil && bytes.Equal(*old, meta) {
		return
	}
	p.meta.Store(&meta)
	if up {
		t.emit(Event{Kind: EventMetaChanged, Remote: Remote{p}})
	}
}
