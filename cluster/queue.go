package cluster

import (
	"slices"
	"sync"

	"github.com/peerkit/peerkit/internal/wire"
)

// sendQueue is a link's send queue: the frames between Send and the
// writer. It grows on demand, so an idle link holds no queue memory; the
// writer takes everything waiting in one step, and gives the emptied
// batch back for reuse. At most half the limit (rounded up) waits, and at
// most as many are in the writer's hands, so senders fill one batch while
// the writer writes the other, and the two together never exceed the
// limit by more than one (a buffered channel of the limit, with one frame
// in the writer's hands, held as many).
//
// A small payload is copied by Send straight into the queue's bytes, as
// a whole data frame (header and payload), so that a burst of small
// messages is one contiguous run of frames the writer writes as it lies:
// no per-message buffer, reference count or pool. Larger payloads, shared
// Broadcast payloads and control messages wait as outFrames of their own.
//
// The queue replaces a buffered channel, which allocated its full depth
// when the link was made and handed frames over one at a time.
type sendQueue struct {
	mu       sync.Mutex
	cur      batch // waiting, oldest first; may be an empty batch kept for reuse
	spare    batch // an emptied batch, reused
	limit    int   // frames waiting and in the writer's hands, together
	inflight int   // frames the writer took and has not handed back
	closed   bool  // the writer has stopped: nothing more is accepted

	// ready holds a token when frames wait that the writer has not been
	// told of. Its capacity is 1: senders never block on it.
	ready chan struct{}
	// room is closed when frames leave a full queue, waking the senders
	// waiting for room; nil unless one is waiting.
	room chan struct{}
}

// outFrame is one frame in a send queue: a control message, a data
// payload of its own (already copied from the caller; the frame holds one
// reference to it), or, with both nil, a small data frame in the batch's
// bytes, which ends at end.
type outFrame struct {
	data *payload
	ctl  *wire.Control
	end  int  // the batch's bytes up to here come before this frame (or are it)
	cont bool // data is the rest of a frame a direct send began: written as it is
	size int  // for cont, the payload's whole length, counted when written
}

// push queues f in q; it is a pusher.
func (f outFrame) push(q *sendQueue) (bool, <-chan struct{}, bool) { return q.push(f) }

// small reports whether f is a data frame in the batch's bytes.
func (f outFrame) small() bool { return f.data == nil && f.ctl == nil }

// drop releases what f holds, for a frame that will not be written.
func (f outFrame) drop() {
	if f.data != nil {
		f.data.release()
	}
}

// batch is frames in order, and the bytes of the small ones.
type batch struct {
	frames []outFrame
	bytes  []byte
}

// maxSmallPayload is the largest payload Send copies into the queue's
// bytes; larger ones get a pooled buffer of their own.
const maxSmallPayload = 4 << 10

func newSendQueue(limit int) *sendQueue {
	return &sendQueue{limit: limit, ready: make(chan struct{}, 1)}
}

// push appends f if the queue has room and is open. When it is full, push
// returns a channel that is closed once there is room again. When it is
// closed, push reports closed and f stays the caller's.
func (q *sendQueue) push(f outFrame) (ok bool, room <-chan struct{}, closed bool) {
	return q.add(f, nil)
}

// pushSmall is push for a data frame of payload p (at most
// maxSmallPayload bytes), which it copies.
func (q *sendQueue) pushSmall(p []byte) (ok bool, room <-chan struct{}, closed bool) {
	return q.add(outFrame{}, p)
}

func (q *sendQueue) add(f outFrame, p []byte) (ok bool, room <-chan struct{}, closed bool) {
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		return false, nil, true
	case len(q.cur.frames) >= (q.limit+1)/2:
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room = q.room
		q.mu.Unlock()
		return false, room, false
	}
	if q.cur.frames == nil {
		q.cur, q.spare = q.spare, batch{}
	}
	if f.small() {
		q.cur.bytes = wire.AppendFrameHeader(q.cur.bytes, wire.FrameData, len(p))
		q.cur.bytes = append(q.cur.bytes, p...)
	}
	f.end = len(q.cur.bytes)
	q.cur.frames = append(q.cur.frames, f)
	wake := len(q.cur.frames) == 1
	q.mu.Unlock()
	if wake {
		select { // never blocks: one token is enough
		case q.ready <- struct{}{}:
		default:
		}
	}
	return true, nil, false
}

// pushFront puts f ahead of every waiting frame, whatever the limit: the
// rest of a frame a direct send began, which must go out next. It reports
// false, f staying the caller's, if the queue is closed.
func (q *sendQueue) pushFront(f outFrame) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	if q.cur.frames == nil {
		q.cur, q.spare = q.spare, batch{}
	}
	f.end = 0 // no small frame's bytes come before it
	q.cur.frames = slices.Insert(q.cur.frames, 0, f)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// idle reports whether no frame waits and none is in the writer's hands.
func (q *sendQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.cur.frames) == 0 && q.inflight == 0
}

// take removes and returns every waiting frame (none if the batch's
// frames are empty), and wakes the senders waiting for room. The caller
// (the writer, one batch at a time) hands the batch back with recycle
// once it is done with it.
func (q *sendQueue) take() batch {
	q.mu.Lock()
	if len(q.cur.frames) == 0 { // nothing waits; an empty batch stays for reuse
		q.mu.Unlock()
		return batch{}
	}
	b := q.cur
	q.cur = batch{}
	q.inflight = len(b.frames)
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
	return b
}

// recycle gives back a batch that take returned, for reuse. A queue keeps
// two batches, so that a writer faster than its senders (it takes each
// batch before the next frame comes, and the senders then fill the other)
// reuses them rather than growing a new one for every burst: b becomes
// the batch senders fill next if they have none yet, else the spare.
func (q *sendQueue) recycle(b batch) {
	clear(b.frames) // let the payloads go
	b.frames, b.bytes = b.frames[:0], b.bytes[:0]
	q.mu.Lock()
	q.inflight = 0
	switch {
	case q.closed || b.frames == nil:
	case q.cur.frames == nil:
		q.cur = b
	case cap(b.frames) >= cap(q.spare.frames):
		q.spare = b
	}
	q.mu.Unlock()
}

// The largest spare batch an idle link keeps.
const (
	maxIdleFrames = 64
	maxIdleBytes  = 4 << 10
)

// trim lets a large spare batch go; the writer calls it when the link has
// been idle, so that a burst's batch is not held for ever.
func (q *sendQueue) trim() {
	q.mu.Lock()
	if cap(q.spare.frames) > maxIdleFrames || cap(q.spare.bytes) > maxIdleBytes {
		q.spare = batch{}
	}
	if len(q.cur.frames) == 0 && (cap(q.cur.frames) > maxIdleFrames || cap(q.cur.bytes) > maxIdleBytes) {
		q.cur = batch{}
	}
	q.mu.Unlock()
}

// close stops the queue from accepting frames and returns those still
// waiting. Every frame push accepted is either taken before close or
// returned by it: exactly once.
func (q *sendQueue) close() []outFrame {
	q.mu.Lock()
	q.closed = true
	rest := q.cur.frames
	q.cur, q.spare = batch{}, batch{}
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
	return rest
}

// depth returns the number of frames waiting or in the writer's hands.
func (q *sendQueue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.cur.frames) + q.inflight
}
