package memory

import (
	"math/bits"
	"sync"
	"time"
)

// chunk is the bytes of one Write (or of one part of a large Write), with
// the time at which they reach the reader. A held chunk has no time yet:
// its link is silent, and it is scheduled when the link heals.
type chunk struct {
	b    []byte
	buf  *[]byte // the pooled buffer b lies in; nil if not pooled
	at   time.Time
	held bool
}

// Chunks' bytes come from pools by size class, 64 B to 256 KiB (powers of
// two), and go back once read: a conn's writes cost no allocation in
// steady state, as a kernel's socket buffers cost a program none.
const (
	minChunkShift = 6
	maxChunkShift = 18
)

var chunkPools [maxChunkShift - minChunkShift + 1]sync.Pool

func chunkClass(n int) int {
	if n <= 1<<minChunkShift {
		return 0
	}
	if n > 1<<maxChunkShift {
		return -1
	}
	return bits.Len(uint(n-1)) - minChunkShift
}

// newChunk copies b into a pooled buffer.
func newChunk(b []byte) chunk {
	c := chunkClass(len(b))
	if c < 0 {
		return chunk{b: append([]byte(nil), b...)}
	}
	buf, _ := chunkPools[c].Get().(*[]byte)
	if buf == nil {
		s := make([]byte, 1<<(c+minChunkShift))
		buf = &s
	}
	return chunk{b: (*buf)[:copy(*buf, b)], buf: buf}
}

// release gives a chunk's buffer back once all of it has been read.
func (c *chunk) release() {
	if c.buf != nil {
		chunkPools[chunkClass(cap(*c.buf))].Put(c.buf)
		c.buf = nil
	}
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
	qbase []chunk   // q's array from its front, reused once q is empty
	size  int       // bytes in q
	limit int       // capacity in bytes
	last  time.Time // delivery time of the newest chunk: keeps bytes in order

	// holding: the direction's link is silent. New chunks are held, and
	// the held chunks (always a suffix of q) wait for the heal. Set and
	// cleared with the Network's lock held too (see Network.update).
	holding bool

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
// whichever is later, so that jitter never reorders bytes; the zero at is
// at once). While the pipe is holding, the chunk is held instead and at is
// ignored.
func (p *pipe) pushLocked(b []byte, at time.Time) {
	c := newChunk(b)
	if p.holding {
		c.held = true
	} else {
		if at.Before(p.last) {
			at = p.last
		}
		p.last = at
		c.at = at
	}
	if len(p.q) == 0 {
		p.q = p.qbase[:0] // start again at the front of the array
	}
	n := cap(p.q)
	p.q = append(p.q, c)
	if len(p.q) == 1 || cap(p.q) != n {
		p.qbase = p.q[:0]
	}
	p.size += len(b)
	p.broadcastLocked()
}

// popLocked copies into b the bytes due now, and returns how many. The
// second result is the time at which the first chunk is due if none is due
// yet (zero if the queue is empty or its first chunk is held). The clock
// is read only for a chunk with a delivery time: on a network without
// faults, none has one.
func (p *pipe) popLocked(b []byte) (int, time.Time) {
	n := 0
	var now time.Time
	for n < len(b) && len(p.q) > 0 {
		head := &p.q[0]
		if head.held {
			break
		}
		if !head.at.IsZero() {
			if now.IsZero() {
				now = time.Now()
			}
			if head.at.After(now) {
				if n == 0 {
					return 0, head.at
				}
				break
			}
		}
		k := copy(b[n:], head.b)
		n += k
		head.b = head.b[k:]
		if len(head.b) == 0 {
			head.release()
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
	p.q, p.qbase, p.size = nil, nil, 0
	p.broadcastLocked()
	p.unlock()
}

// holdLocked makes the pipe hold: its link went silent at now. The bytes
// not yet delivered are held (as a TCP sender keeps unacknowledged
// segments to retransmit), and so will be the bytes written until the
// heal. Bytes already delivered stay, as in a receiver's socket buffer.
func (p *pipe) holdLocked(now time.Time) {
	p.holding = true
	for i := range p.q {
		if p.q[i].at.After(now) {
			p.q[i].held, p.q[i].at = true, time.Time{}
		}
	}
	if p.last.After(now) {
		p.last = now
	}
	p.broadcastLocked()
}

// heldBytesLocked counts the bytes held.
func (p *pipe) heldBytesLocked() int {
	k := 0
	for i := len(p.q) - 1; i >= 0 && p.q[i].held; i-- {
		k += len(p.q[i].b)
	}
	return k
}

// releaseLocked ends the holding: its link healed. The held bytes are due
// at at (or after the bytes before them), in order.
func (p *pipe) releaseLocked(at time.Time) {
	p.holding = false
	if at.Before(p.last) {
		at = p.last
	}
	for i := len(p.q) - 1; i >= 0 && p.q[i].held; i-- {
		p.q[i].held, p.q[i].at = false, at
		p.last = at
	}
	p.broadcastLocked()
}

// discardHeldLocked ends the holding and discards the held bytes: an end
// of the conn gave up (closed or crashed) during the silence.
func (p *pipe) discardHeldLocked() {
	p.holding = false
	k := len(p.q)
	for k > 0 && p.q[k-1].held {
		k--
		p.size -= len(p.q[k].b)
		p.q[k] = chunk{}
	}
	p.q = p.q[:k]
	p.broadcastLocked()
}

// closeRead marks the reading end closed and discards what it did not read.
func (p *pipe) closeRead() {
	p.lock()
	p.rclosed = true
	p.q, p.qbase, p.size = nil, nil, 0
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
