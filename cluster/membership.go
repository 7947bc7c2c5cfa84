package cluster

import (
	"cmp"
	"errors"
	"slices"
	"time"

	"github.com/peerkit/peerkit/internal/wire"
)

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

// entry is the node's record of one remote address. It exists while a link
// is up, a dial is in progress, or a reconnect loop owns it; its state is
// derived from those three.
type entry struct {
	addr    string
	peer    *peer    // the last incarnation seen at addr, kept across reconnects
	link    *link    // the live link, or nil
	attempt *attempt // the dial in progress, or nil
	loop    bool     // a reconnect loop owns the entry
	kick    chan struct{}
	since   time.Time // when the state last changed
}

// attempt is one dial in progress; callers that ask for the same address
// meanwhile wait for it instead of dialling again.
type attempt struct {
	done chan struct{}
	err  error
}

func (e *entry) state() State {
	switch {
	case e.link != nil:
		return StateUp
	case e.attempt != nil:
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

// entryLocked returns the entry for addr, creating it.
func (n *Node) entryLocked(addr string) *entry {
	e := n.remotes[addr]
	if e == nil {
		e = &entry{addr: addr, kick: make(chan struct{}, 1), since: time.Now()}
		n.remotes[addr] = e
	}
	return e
}

// gcLocked forgets e if nothing holds it any more.
func (n *Node) gcLocked(e *entry) {
	if e.link == nil && e.attempt == nil && !e.loop && n.remotes[e.addr] == e {
		delete(n.remotes, e.addr)
	}
}

// numLinksLocked counts live links.
func (n *Node) numLinksLocked() int {
	c := 0
	for _, e := range n.remotes {
		if e.link != nil {
			c++
		}
	}
	return c
}

// remotesLocked is the membership snapshot, sorted by address.
func (n *Node) remotesLocked() []Remote {
	rs := make([]Remote, 0, len(n.remotes))
	for _, e := range n.remotes {
		if e.link != nil {
			rs = append(rs, Remote{e.peer})
		}
	}
	slices.SortFunc(rs, func(a, b Remote) int { return cmp.Compare(a.p.addr, b.p.addr) })
	return rs
}

// viewLocked lists the peers with live links, except the one named.
func (n *Node) viewLocked(except string) []wire.Peer {
	ps := make([]wire.Peer, 0, len(n.remotes))
	for _, e := range n.remotes {
		if e.link != nil && e.addr != except && len(ps) < n.opts.maxPeerList {
			ps = append(ps, wire.Peer{Addr: e.addr, Instance: e.peer.instance})
		}
	}
	return ps
}

// attachLocked makes l the live link of its remote and queues the events.
// Any link it replaces must have been detached first.
func (n *Node) attachLocked(e *entry, l *link) {
	n.links[l] = struct{}{}
	e.link = l
	e.peer = l.peer
	e.since = time.Now()
	l.peer.link.Store(l)
	delete(n.tombs, e.addr)
	select { // wake a reconnect loop so it sees the link and ends
	case e.kick <- struct{}{}:
	default:
	}
	// The remote's first frame from us is our view of the cluster. The
	// writer sends it before anything queued; it does not go through the
	// queue, so nothing here can wait for room under the lock.
	l.first = &wire.Control{Peers: n.viewLocked(e.addr)}
	n.emitLocked(true, l.peer)
	close(n.upCh)
	n.upCh = make(chan struct{})
}

// emitLocked queues a membership event for the callbacks, if any.
func (n *Node) emitLocked(added bool, p *peer) {
	listened, snapshot := n.events.wants()
	if !listened {
		return
	}
	e := event{added: added, remote: Remote{p}}
	if snapshot {
		e.remotes = n.remotesLocked()
	}
	n.events.push(e)
}

// detachLocked removes e's live link from the membership and queues the
// events. The caller shuts the link down after unlocking.
func (n *Node) detachLocked(e *entry) *link {
	l := e.link
	e.link = nil
	e.since = time.Now()
	l.peer.link.Store(nil)
	if !n.closing {
		n.emitLocked(false, l.peer)
	}
	return l
}

// linkDown is called once per link, when it shuts down. If the link was
// still live, the remote is removed ungracefully and redialled.
func (n *Node) linkDown(l *link, cause error) {
	n.mu.Lock()
	e := n.remotes[l.peer.addr]
	if e == nil || e.link != l {
		n.mu.Unlock()
		return
	}
	n.detachLocked(e)
	loop := !n.closing && !e.loop
	if loop {
		e.loop = true
	}
	n.mu.Unlock()
	n.log.Info("remote lost", "remote", l.peer.addr, "instance", l.peer.instance, "err", cause)
	if loop {
		n.wg.Go(func() { n.reconnectLoop(e) })
	}
}

// remoteLeft handles a goodbye on l: the remote is removed without
// reconnection and tombstoned.
func (n *Node) remoteLeft(l *link) {
	n.mu.Lock()
	if e := n.remotes[l.peer.addr]; e != nil && e.link == l {
		n.detachLocked(e)
		n.tombstoneLocked(l.peer.addr, l.peer.instance)
		e.loop = false
		n.gcLocked(e)
	}
	n.mu.Unlock()
	n.log.Info("remote left", "remote", l.peer.addr, "instance", l.peer.instance)
	l.shutdown(errGoodbye)
}

func (n *Node) tombstoneLocked(addr string, instance uint64) {
	now := time.Now()
	if len(n.tombs) >= n.opts.maxTombstones {
		// Evict the tombstone closest to expiry.
		var oldest string
		for a, t := range n.tombs {
			if oldest == "" || t.expires.Before(n.tombs[oldest].expires) {
				oldest = a
			}
		}
		delete(n.tombs, oldest)
	}
	n.tombs[addr] = tombstone{instance: instance, expires: now.Add(n.opts.tombstoneTTL)}
}

// buriedLocked reports whether gossip about (addr, instance) must be
// ignored because that incarnation left on purpose.
func (n *Node) buriedLocked(addr string, instance uint64) bool {
	t, ok := n.tombs[addr]
	if !ok {
		return false
	}
	if time.Now().After(t.expires) {
		delete(n.tombs, addr)
		return false
	}
	return t.instance == instance
}

// handleControl applies a control message received on l.
func (n *Node) handleControl(l *link, c *wire.Control) {
	if c.MetaSet && len(c.Meta) <= wire.MaxMeta {
		meta := c.Meta
		l.peer.meta.Store(&meta)
	}
	peers := c.Peers
	if len(peers) > n.opts.maxPeerList {
		peers = peers[:n.opts.maxPeerList]
	}
	var dial []string
	n.mu.Lock()
	for _, p := range peers {
		if p.Addr == n.self.Addr || p.Instance == n.self.Instance || p.Addr == "" || len(p.Addr) > wire.MaxAddr {
			continue
		}
		if n.closing || n.buriedLocked(p.Addr, p.Instance) {
			continue
		}
		e := n.remotes[p.Addr]
		switch {
		case e == nil:
			if len(n.remotes) < n.opts.maxRemotes && n.gossipDials < maxGossipDials {
				n.gossipDials++
				dial = append(dial, p.Addr)
				n.entryLocked(p.Addr).attempt = &attempt{done: make(chan struct{})}
			}
		case e.link == nil && e.attempt == nil && e.loop:
			// A third node sees it up: try now instead of waiting.
			select {
			case e.kick <- struct{}{}:
			default:
			}
		}
	}
	n.mu.Unlock()
	for _, addr := range dial {
		n.wg.Go(func() {
			defer func() {
				n.mu.Lock()
				n.gossipDials--
				n.mu.Unlock()
			}()
			n.runAttempt(n.ctx, addr, dialGossip)
		})
	}
}

// reconnectLoop redials e's address with capped, jittered backoff until a
// link is up, the node closes, the remote is closed on purpose, or the
// attempts run out.
func (n *Node) reconnectLoop(e *entry) {
	defer func() {
		n.mu.Lock()
		e.loop = false
		n.gcLocked(e)
		n.mu.Unlock()
	}()
	for i := 0; n.opts.reconnectAttempts == 0 || i < n.opts.reconnectAttempts; i++ {
		t := time.NewTimer(backoff(n.opts.reconnectBase, n.opts.reconnectMax, i))
		select {
		case <-t.C:
		case <-e.kick:
			t.Stop()
		case <-n.ctx.Done():
			t.Stop()
			return
		}
		n.mu.Lock()
		live := n.remotes[e.addr] == e && e.loop && e.link == nil
		n.mu.Unlock()
		if !live {
			return
		}
		n.stats.reconnects.Add(1)
		err := n.connect(n.ctx, e.addr, dialReconnect)
		if err == nil || errors.Is(err, errGone) || errors.Is(err, ErrClosed) {
			return
		}
		n.log.Debug("reconnect failed", "remote", e.addr, "attempt", i+1, "err", err)
	}
	n.log.Info("reconnect attempts exhausted; forgetting remote", "remote", e.addr)
}
