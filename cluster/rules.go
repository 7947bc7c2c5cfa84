package cluster

import (
	"time"

	"github.com/peerkit/peerkit/internal/wire"
)

// The table's events. Each one runs under the node's lock and leaves its
// actions in t.out.

// connectResult says what the node does for a connect request.
type connectResult uint8

const (
	connectUp     connectResult = iota + 1 // a link is up already
	connectWait                            // a dial is in progress: wait for it
	connectDial                            // dial now (registered)
	connectClosed                          // the node is closing
)

// connect is a request for a link to addr: Add (explicit), or a dial-back
// to verify a claim (verify) which dials even while a link is up.
func (t *table) connect(addr string, kind dialKind, now time.Time) connectResult {
	if t.closing {
		return connectClosed
	}
	if kind == dialExplicit {
		delete(t.tombs, addr) // an explicit Add overrides a goodbye
	}
	e := t.remotes[addr]
	switch {
	case e != nil && e.link != nil && kind != dialVerify:
		return connectUp
	case e != nil && e.dialing:
		return connectWait
	}
	e = t.entry(addr, now)
	e.dialing, e.since = true, now
	return connectDial
}

// dialed is a dial's handshake accepted by the listener, which answered
// with h: it makes l (the link on the new conn) live, replacing a link to
// an earlier instance at the same address (the new instance answered a
// dial to the address, which is the proof that it owns it). It reports
// false if l is not wanted: the node is closing, or a link with this
// instance is up already (the dialled address is an alias of h.Addr).
func (t *table) dialed(h *wire.Hello, mk func(*peer) *link, now time.Time) *link {
	if t.closing {
		return nil
	}
	e := t.entry(h.Addr, now)
	if e.link != nil {
		if e.link.peer.instance == h.Instance {
			return nil
		}
		t.do(action{kind: actDrop, link: t.detach(e, now, ReasonReplaced, nil), cause: errReplaced})
	}
	l := mk(t.peerFor(e, h))
	t.attach(e, l, now)
	return l
}

// dialDone ends the dial of addr that connect, gossip or a redial started.
// code is the listener's verdict if it sent one, theirs its hello if it
// was read; err is nil if the link is up.
func (t *table) dialDone(addr string, kind dialKind, err error, code byte, theirs *wire.Hello, now time.Time) {
	if kind == dialGossip {
		t.gossipDials--
	}
	if code == wire.VerdictGone && theirs != nil {
		// The peer closed this node on purpose: stop redialling it.
		t.tombstone(theirs.Addr, theirs.Instance, now)
		if e := t.remotes[theirs.Addr]; e != nil {
			e.lost = false
			t.gc(e)
		}
	}
	e := t.remotes[addr]
	if e == nil {
		return
	}
	if e.dialing {
		e.dialing, e.since = false, now
	}
	if err != nil && e.lost && e.link == nil {
		t.arm(e)
	}
	t.gc(e)
}

// admit decides whether the peer that sent h may have a link on a conn it
// dialled to this node, and if so makes mk's link live (PROTOCOL.md,
// "Admission"). A conflicting claim on a live address is checked by
// dialling the address back (actVerify).
func (t *table) admit(h *wire.Hello, mk func(*peer) *link, now time.Time) (*link, byte, string) {
	if t.closing {
		return nil, wire.VerdictClosing, "node closing"
	}
	if h.Addr == t.cfg.self.Addr {
		return nil, wire.VerdictSelf, "address is the listener's own"
	}
	if h.Flags&wire.FlagExplicit == 0 && t.buried(h.Addr, h.Instance, now) {
		return nil, wire.VerdictGone, "closed on purpose; only an explicit Add reconnects"
	}
	e := t.remotes[h.Addr]
	if e != nil && e.link != nil {
		if e.link.peer.instance == h.Instance {
			return nil, wire.VerdictDuplicate, "already linked"
		}
		t.do(action{kind: actVerify, addr: h.Addr})
		return nil, wire.VerdictConflict, "address held by a live instance; verifying"
	}
	// Both dialled each other at once: keep the conn dialled by the
	// smaller address. Both sides apply the same rule.
	if e != nil && e.dialing && h.Addr > t.cfg.self.Addr {
		return nil, wire.VerdictDuplicate, "simultaneous dial; ours wins"
	}
	if t.numLinks() >= t.cfg.maxRemotes {
		return nil, wire.VerdictBusy, "remote limit reached"
	}
	e = t.entry(h.Addr, now)
	l := mk(t.peerFor(e, h))
	t.attach(e, l, now)
	return l, wire.VerdictAccept, ""
}

// linkDown is l shutting down, for cause. If it was still live, its remote
// is lost: removed ungracefully, and redialled with backoff.
func (t *table) linkDown(l *link, cause error, now time.Time) (lost bool) {
	e := t.remotes[l.peer.addr]
	if e == nil || e.link != l {
		return false
	}
	t.detach(e, now, ReasonLost, cause)
	if t.closing {
		t.gc(e)
		return false
	}
	e.lost, e.redials = true, 0
	t.arm(e)
	return true
}

// goodbye is the remote on l saying goodbye: it is removed without
// redialling and tombstoned.
func (t *table) goodbye(l *link, now time.Time) {
	e := t.remotes[l.peer.addr]
	if e == nil || e.link != l {
		return
	}
	t.detach(e, now, ReasonLeft, nil)
	t.tombstone(e.addr, l.peer.instance, now)
	e.lost, e.timer = false, 0
	t.gc(e)
}

// closeRemote lets p go on purpose: its link (if any) leaves gracefully,
// nothing redials it, and gossip does not bring it back. It reports false
// if p is not this table's remote.
func (t *table) closeRemote(p *peer, now time.Time) bool {
	e := t.remotes[p.addr]
	if e == nil || e.peer != p {
		return false
	}
	if e.link != nil {
		t.do(action{kind: actLeave, link: t.detach(e, now, ReasonClosed, nil)})
	}
	e.lost, e.timer = false, 0
	t.tombstone(e.addr, p.instance, now)
	t.gc(e)
	return true
}

// close is the node closing: every link goes (gracefully, or at once as
// in a crash), and nothing is dialled or redialled any more.
func (t *table) close(graceful bool, now time.Time) {
	t.closing = true
	for _, e := range t.remotes {
		e.lost, e.timer = false, 0
		if e.link == nil {
			continue
		}
		l := t.detach(e, now, ReasonClosed, nil) // no event: the node is closing
		if graceful {
			t.do(action{kind: actLeave, link: l})
		} else {
			t.do(action{kind: actDrop, link: l, cause: errAborted})
		}
	}
}

// gossip is a peer list received from a remote (PROTOCOL.md, "Control
// messages"): unknown addresses are dialled, within the limits, and a lost
// remote that a third node sees up is redialled at once.
func (t *table) gossip(peers []wire.Peer, now time.Time) {
	if len(peers) > t.cfg.maxPeerList {
		peers = peers[:t.cfg.maxPeerList]
	}
	for _, p := range peers {
		if t.closing || p.Addr == t.cfg.self.Addr || p.Instance == t.cfg.self.Instance ||
			p.Addr == "" || len(p.Addr) > wire.MaxAddr || t.buried(p.Addr, p.Instance, now) {
			continue
		}
		e := t.remotes[p.Addr]
		switch {
		case e == nil:
			if len(t.remotes) < t.cfg.maxRemotes && t.gossipDials < maxGossipDials {
				t.gossipDials++
				e = t.entry(p.Addr, now)
				e.dialing = true
				t.do(action{kind: actDial, addr: p.Addr, dial: dialGossip})
			}
		case e.link == nil && !e.dialing && e.lost:
			t.redial(e)
		}
	}
}

// arm schedules e's next redial, or gives e up if its redials ran out.
func (t *table) arm(e *entry) {
	if n := t.cfg.reconnectAttempts; n > 0 && e.redials >= n {
		e.lost, e.timer = false, 0
		t.do(action{kind: actGiveUp, addr: e.addr})
		t.gc(e)
		return
	}
	t.timers++
	e.timer = t.timers
	t.do(action{kind: actArm, addr: e.addr, gen: e.timer, after: t.cfg.backoff(e.redials)})
}

// timerFired is redial timer gen of addr going off.
func (t *table) timerFired(addr string, gen uint64) {
	e := t.remotes[addr]
	if t.closing || e == nil || e.timer != gen || !e.lost || e.link != nil {
		return // stale: the remote is back, closed, or re-armed since
	}
	if e.dialing {
		e.timer = 0 // a dial is in progress; its end re-arms if it fails
		return
	}
	t.redial(e)
}

// redial dials lost e now.
func (t *table) redial(e *entry) {
	e.timer = 0
	if n := t.cfg.reconnectAttempts; n > 0 && e.redials >= n {
		t.arm(e) // gives it up
		return
	}
	e.redials++
	e.dialing = true
	t.do(action{kind: actDial, addr: e.addr, dial: dialReconnect})
}

// tick is the periodic maintenance: tombstones expire, and the view goes
// to one live link chosen uniformly at random (anti-entropy).
func (t *table) tick(now time.Time) {
	for a, tb := range t.tombs {
		if now.After(tb.expires) {
			delete(t.tombs, a)
		}
	}
	if l := t.randomLink(); l != nil {
		t.do(action{kind: actView, link: l})
	}
}

// randomLink returns a live link chosen uniformly at random, or nil if
// there is none. (A map's iteration order is not uniform: its first key is
// not a fair draw.)
func (t *table) randomLink() *link {
	var pick *link
	live := 0
	for _, e := range t.remotes {
		if e.link == nil {
			continue
		}
		live++
		if t.cfg.pick(live) == 0 { // reservoir sampling: each with probability 1/live
			pick = e.link
		}
	}
	return pick
}

// tombstone remembers that (addr, instance) left on purpose, evicting the
// tombstone closest to expiry if there are too many.
func (t *table) tombstone(addr string, instance uint64, now time.Time) {
	if _, ok := t.tombs[addr]; !ok && len(t.tombs) >= t.cfg.maxTombstones {
		var oldest string
		for a, tb := range t.tombs {
			if oldest == "" || tb.expires.Before(t.tombs[oldest].expires) {
				oldest = a
			}
		}
		delete(t.tombs, oldest)
	}
	t.tombs[addr] = tombstone{instance: instance, expires: now.Add(t.cfg.tombstoneTTL)}
}

// buried reports whether gossip about (addr, instance) must be ignored
// because that incarnation left on purpose.
func (t *table) buried(addr string, instance uint64, now time.Time) bool {
	tb, ok := t.tombs[addr]
	if !ok {
		return false
	}
	if now.After(tb.expires) {
		delete(t.tombs, addr)
		return false
	}
	return tb.instance == instance
}

// meta is a metadata update received on l; one from a link no longer
// live is stale.
func (t *table) meta(l *link, meta []byte) {
	if e := t.remotes[l.peer.addr]; e != nil && e.link == l {
		t.setMeta(l.peer, meta, true)
	}
}
