package cluster

import (
	"time"

	"github.com/peerkit/peerkit/internal/wire"
)

// The node's side of the membership table: it feeds the table events from
// links, timers and the public methods, and carries out the table's
// actions. Actions that only change memory (events for the callbacks, a
// timer, a control frame for a queue, the attempts callers wait on) are
// applied under the node's lock; the rest (closing links, dials) after it.

// redialTimer is an armed redial timer of one address.
type redialTimer struct {
	t   *time.Timer
	gen uint64
}

// attempt is one dial in progress; callers that ask for the same address
// meanwhile wait for it instead of dialling again.
type attempt struct {
	done chan struct{}
	err  error
}

// isClosed reports whether Close has begun.
func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.table.closing
}

// step runs one event of the table under the node's lock and carries out
// its actions.
func (n *Node) step(event func(t *table, now time.Time)) {
	n.run(n.stepLater(event))
}

// stepLater runs one event under the lock and applies its memory actions;
// the caller carries out the rest with run.
func (n *Node) stepLater(event func(t *table, now time.Time)) []action {
	n.mu.Lock()
	defer n.mu.Unlock()
	event(n.table, time.Now())
	return n.applyLocked(n.table.take())
}

// applyLocked applies the actions that only change memory and returns the
// others.
func (n *Node) applyLocked(acts []action) []action {
	rest := acts[:0]
	for _, a := range acts {
		switch a.kind {
		case actEvent:
			n.events.push(event{Event: a.event, remotes: a.remotes})
		case actRemovalNoted:
			n.stats.removal(a.event)
		case actUp:
			close(n.upCh)
			n.upCh = make(chan struct{})
		case actArm:
			n.armLocked(a.addr, a.gen, a.after)
		case actView:
			a.link.tryEnqueue(outFrame{ctl: &wire.Control{
				Peers:   n.table.view(a.link.peer.addr),
				MetaSet: true, // repairs a SetMeta update shed by a full queue
				Meta:    *n.meta.Load(),
			}})
		case actDial:
			n.attempts[a.addr] = &attempt{done: make(chan struct{})}
			rest = append(rest, a)
		default:
			rest = append(rest, a)
		}
	}
	return rest
}

// run carries out the actions that do I/O. It must not be called with the
// node's lock held.
func (n *Node) run(acts []action) {
	for _, a := range acts {
		switch a.kind {
		case actDial:
			if a.dial == dialReconnect {
				n.stats.reconnects.Add(1)
			}
			n.wg.Go(func() { n.runDial(n.ctx, a.addr, a.dial) })
		case actVerify:
			// Take a claim on a live address on trust only if the address
			// answers with the new instance: dial it back.
			n.wg.Go(func() { n.connect(n.ctx, a.addr, dialVerify) })
		case actLeave:
			a.link.leave()
		case actDrop:
			a.link.shutdown(a.cause)
		case actGiveUp:
			n.log.Info("reconnect attempts exhausted; forgetting remote", "remote", a.addr)
		}
	}
}

// armLocked arms redial timer gen of addr, replacing one armed before. The
// node's WaitGroup owns the timer's callback from now until it has run or
// the timer is stopped.
func (n *Node) armLocked(addr string, gen uint64, after time.Duration) {
	if old, ok := n.timers[addr]; ok && old.t.Stop() {
		n.wg.Done()
	}
	n.wg.Add(1)
	n.timers[addr] = redialTimer{gen: gen, t: time.AfterFunc(after, func() {
		defer n.wg.Done()
		n.step(func(t *table, _ time.Time) {
			if rt, ok := n.timers[addr]; ok && rt.gen == gen {
				delete(n.timers, addr)
			}
			t.timerFired(addr, gen)
		})
	})}
}

// stopTimersLocked stops every redial timer (the node is closing).
func (n *Node) stopTimersLocked() {
	for addr, rt := range n.timers {
		if rt.t.Stop() {
			n.wg.Done()
		}
		delete(n.timers, addr)
	}
}

// linkDown is called once per link, when it shuts down. If the link was
// still live, the remote is lost: removed ungracefully and redialled.
func (n *Node) linkDown(l *link, cause error) {
	var lost bool
	n.step(func(t *table, now time.Time) { lost = t.linkDown(l, cause, now) })
	if lost {
		n.log.Info("remote lost", "remote", l.peer.addr, "instance", l.peer.instance, "err", cause)
	}
}

// remoteLeft handles a goodbye on l: the remote is removed without
// reconnection and tombstoned.
func (n *Node) remoteLeft(l *link) {
	n.step(func(t *table, now time.Time) { t.goodbye(l, now) })
	n.log.Info("remote left", "remote", l.peer.addr, "instance", l.peer.instance)
	l.shutdown(errGoodbye)
}

// handleControl applies a control message received on l.
func (n *Node) handleControl(l *link, c *wire.Control) {
	metaSet := c.MetaSet && len(c.Meta) <= wire.MaxMeta
	if !metaSet && len(c.Peers) == 0 {
		return // a repeated view that names nobody: nothing to do
	}
	n.step(func(t *table, now time.Time) {
		if metaSet {
			t.meta(l, c.Meta)
		}
		t.gossip(c.Peers, now)
	})
}
