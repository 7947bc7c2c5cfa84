package cluster

import "sync"

// event is one membership change, queued in the order it happened.
type event struct {
	added   bool     // RemoteAdded if true, RemoteRemoved if false
	remote  Remote   // the remote added or removed
	remotes []Remote // the membership right after the change
}

// dispatcher runs callbacks on its own goroutine, one event at a time and
// in order, never under a node lock. Its queue is unbounded so that a
// callback that blocks cannot stall the node; membership churn bounds it.
type dispatcher struct {
	mu      sync.Mutex // guards the fields below; held for a few lines only
	queue   []event
	added   []func(Remote)
	removed []func(Remote)
	changed []func([]Remote)
	closed  bool
	wake    chan struct{} // capacity 1: "the queue may be non-empty"
	done    chan struct{} // closed when run returns
}

func newDispatcher() *dispatcher {
	return &dispatcher{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// push queues an event. The node calls it while holding its own lock, so
// that events queue in the order the membership changed.
func (d *dispatcher) push(e event) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, e)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// wants reports whether any callback is registered, and whether any
// wants the membership snapshot, so that nobody pays for events no one
// listens to.
func (d *dispatcher) wants() (listened, snapshot bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.added)+len(d.removed)+len(d.changed) > 0, len(d.changed) > 0
}

func (d *dispatcher) onAdded(f func(Remote)) {
	d.mu.Lock()
	d.added = append(d.added, f)
	d.mu.Unlock()
}

func (d *dispatcher) onRemoved(f func(Remote)) {
	d.mu.Lock()
	d.removed = append(d.removed, f)
	d.mu.Unlock()
}

func (d *dispatcher) onChanged(f func([]Remote)) {
	d.mu.Lock()
	d.changed = append(d.changed, f)
	d.mu.Unlock()
}

// close makes run return after the callback in progress, if any; events
// still queued are dropped.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.queue = nil
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) run() {
	defer close(d.done)
	for range d.wake {
		for {
			d.mu.Lock()
			if d.closed {
				d.mu.Unlock()
				return
			}
			if len(d.queue) == 0 {
				d.mu.Unlock()
				break
			}
			e := d.queue[0]
			d.queue[0] = event{}
			d.queue = d.queue[1:]
			if len(d.queue) == 0 {
				d.queue = nil // let the backing array go
			}
			single, changed := d.removed, d.changed
			if e.added {
				single = d.added
			}
			d.mu.Unlock()
			for _, f := range single {
				f(e.remote)
			}
			for _, f := range changed {
				f(e.remotes)
			}
		}
	}
}
