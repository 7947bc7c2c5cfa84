package cluster

import "sync"

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventAdded: a remote was added (connected, or reconnected).
	EventAdded EventKind = iota + 1
	// EventRemoved: a remote was removed; Event.Reason says why.
	EventRemoved
	// EventMetaChanged: a connected remote's metadata changed
	// (Remote.Meta returns the new value).
	EventMetaChanged
)

// String returns the kind's name: "added", "removed" or "meta".
func (k EventKind) String() string {
	switch k {
	case EventAdded:
		return "added"
	case EventRemoved:
		return "removed"
	case EventMetaChanged:
		return "meta"
	}
	return "unknown"
}

// Reason says why a remote was removed.
type Reason uint8

// Removal reasons.
const (
	// ReasonLeft: the remote said goodbye (its Close or CloseRemote). It
	// is not redialled.
	ReasonLeft Reason = iota + 1
	// ReasonLost: the link ended without a goodbye: the remote crashed,
	// the connection was reset, or the remote was silent past the network
	// timeout. It is redialled with backoff (Event.Err says what ended the
	// link).
	ReasonLost
	// ReasonReplaced: a restarted instance of the remote answered at its
	// address; an EventAdded for the new instance follows.
	ReasonReplaced
	// ReasonClosed: this node let the remote go (CloseRemote).
	ReasonClosed
)

// String returns the reason's name: "left", "lost", "replaced" or
// "closed".
func (r Reason) String() string {
	switch r {
	case ReasonLeft:
		return "left"
	case ReasonLost:
		return "lost"
	case ReasonReplaced:
		return "replaced"
	case ReasonClosed:
		return "closed"
	}
	return "unknown"
}

// Event is one change of the membership, as OnEvent reports it.
type Event struct {
	Kind   EventKind
	Remote Remote
	// Reason is why the remote was removed (EventRemoved only).
	Reason Reason
	// Err is what ended the link of a lost remote (ReasonLost only).
	Err error
}

// event is one membership change, queued in the order it happened.
type event struct {
	Event
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
	all     []func(Event)
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
	return len(d.added)+len(d.removed)+len(d.changed)+len(d.all) > 0, len(d.changed) > 0
}

// The on methods register a callback; a nil one is ignored (it would
// crash the dispatcher at the first event).
func (d *dispatcher) onAdded(f func(Remote)) {
	if f == nil {
		return
	}
	d.mu.Lock()
	d.added = append(d.added, f)
	d.mu.Unlock()
}

func (d *dispatcher) onRemoved(f func(Remote)) {
	if f == nil {
		return
	}
	d.mu.Lock()
	d.removed = append(d.removed, f)
	d.mu.Unlock()
}

func (d *dispatcher) onEvent(f func(Event)) {
	if f == nil {
		return
	}
	d.mu.Lock()
	d.all = append(d.all, f)
	d.mu.Unlock()
}

func (d *dispatcher) onChanged(f func([]Remote)) {
	if f == nil {
		return
	}
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
			var single []func(Remote)
			changed, all := d.changed, d.all
			switch e.Kind {
			case EventAdded:
				single = d.added
			case EventRemoved:
				single = d.removed
			default:
				changed = nil // the membership did not change
			}
			d.mu.Unlock()
			for _, f := range single {
				f(e.Remote)
			}
			for _, f := range changed {
				f(e.remotes)
			}
			for _, f := range all {
				f(e.Event)
			}
		}
	}
}
