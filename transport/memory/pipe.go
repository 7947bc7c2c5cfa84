package memory

import "time"

// chunk is the bytes of one Write (or of one part of a large Write), with
// the time at which they reach the reader.
type chunk struct {
	b  []byte
	at time.Time
}

// pipe is one direction of a conn: a bounded queue of chunks. Its lock is a
// channel and its waiters wait on channels, so goroutines blocked on it are
// durably blocked inside a synctest bubble. No goroutine runs for a pipe:
// latency and bandwidth are timestamps on the chunks, and the reader waits
// with a timer until the first one is due.
type pipe struct {
	mu chan struct{} // capacity 1; guards the fields below

	// changed is closed (and replaced) whenever the state changes while
	// someone waits on it: bytes added or taken, either end closed, reset.
	changed chan struct{}
	waiting bool

	q     []chunk
	size  int       // bytes in q
	limit int       // capacity in bytes
	last  time.Time // delivery time of the newest chunk: keeps bytes in order

	eof     bool  // the writing end closed: reader sees io.EOF once q is empty
	rclosed bool  // the reading end closed: writes fail with ErrBrokenPipe
	err     error // the conn was reset: both ends fail with err
}

func newPipe(limit int) *pipe {
	return &pipe{mu: make(chan struct{}, 1), changed: make(chan struct{}), limit: limit}
}

func (p *pipe) lock()   { p.mu <- struct{}{} }
func (p *pipe) unlock() { <-p.mu }

// waitChanLocked returns a channel closed at the next state change.
func (p *pipe) waitChanLocked() <-chan struct{} {
	p.waiting = true
	return p.changed
}

// broadcastLocked wakes every goroutine waiting for a state change.
func (p *pipe) broadcastLocked() {
	if p.waiting {
		close(p.changed)
		p.changed = make(chan struct{})
		p.waiting = false
	}
}

// pushLocked appends a copy of b, due at at (or after the previous chunk,
// whichever is later, so that jitter never reorders bytes).
func (p *pipe) pushLocked(b []byte, at time.Time) {
	if at.Before(p.last) {
		at = p.last
	}
	p.last = at
	p.q = append(p.q, chunk{b: append([]byte(nil), b...), at: at})
	p.size += len(b)
	p.broadcastLocked()
}

// popLocked copies into b the bytes due at now, and returns how many. The
// second result is the time at which the first chunk is due if none is due
// yet (zero if the queue is empty).
func (p *pipe) popLocked(b []byte, now time.Time) (int, time.Time) {
	n := 0
	for n < len(b) && len(p.q) > 0 {
		head := &p.q[0]
		if head.at.After(now) {
			if n == 0 {
				return 0, head.at
			}
			break
		}
		k := copy(b[n:], head.b)
		n += k
		head.b = head.b[k:]
		if len(head.b) == 0 {
			p.q[0] = chunk{}
			p.q = p.q[1:]
		}
	}
	if n > 0 {
		p.size -= n
		p.broadcastLocked()
	}
	return n, time.Time{}
}

// fail resets the pipe: pending bytes are discarded and both ends see err
// (the first error given wins).
func (p *pipe) fail(err error) {
	p.lock()
	if p.err == nil {
		p.err = err
	}
	p.q, p.size = nil, 0
	p.broadcastLocked()
	p.unlock()
}

// dropInFlight discards the bytes not yet delivered at now: they were on a
// link that went silent. Bytes already delivered stay, as in a receiver's
// socket buffer. Waiting writers are woken so they notice the silence.
func (p *pipe) dropInFlight(now time.Time) {
	p.lock()
	kept := p.q[:0]
	size := 0
	for _, c := range p.q {
		if !c.at.After(now) {
			kept = append(kept, c)
			size += len(c.b)
		}
	}
	for i := len(kept); i < len(p.q); i++ {
		p.q[i] = chunk{}
	}
	p.q, p.size = kept, size
	if p.last.After(now) {
		p.last = now
	}
	p.broadcastLocked()
	p.unlock()
}

// closeRead marks the reading end closed and discards what it did not read.
func (p *pipe) closeRead() {
	p.lock()
	p.rclosed = true
	p.q, p.size = nil, 0
	p.broadcastLocked()
	p.unlock()
}

// closeWrite marks the writing end closed; queued bytes are still delivered.
func (p *pipe) closeWrite() {
	p.lock()
	p.eof = true
	p.broadcastLocked()
	p.unlock()
}

// wake wakes waiters so that they re-check the link's faults.
func (p *pipe) wake() {
	p.lock()
	p.broadcastLocked()
	p.unlock()
}
