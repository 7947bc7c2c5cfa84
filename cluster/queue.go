package cluster

import "sync"

// sendQueue is a link's send queue: the frames between Send and the
// writer. It holds at most limit frames and grows on demand, so an idle
// link holds no queue memory; the writer takes everything waiting in one
// step, and gives the emptied slice back for reuse.
//
// The queue replaces a buffered channel, which allocates its full depth
// when the link is made and hands frames over one at a time.
type sendQueue struct {
	mu     sync.Mutex
	frames []outFrame // waiting, oldest first
	spare  []outFrame // an emptied batch, reused for frames
	limit  int
	closed bool // the writer has stopped: nothing more is accepted

	// ready holds a token when frames wait that the writer has not been
	// told of. Its capacity is 1: senders never block on it.
	ready chan struct{}
	// room is closed when frames leave a full queue, waking the senders
	// waiting for room; nil unless one is waiting.
	room chan struct{}
}

func newSendQueue(limit int) *sendQueue {
	return &sendQueue{limit: limit, ready: make(chan struct{}, 1)}
}

// push appends f if the queue has room and is open. When it is full, push
// returns a channel that is closed once there is room again. When it is
// closed, push reports closed and f stays the caller's.
func (q *sendQueue) push(f outFrame) (ok bool, room <-chan struct{}, closed bool) {
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		return false, nil, true
	case len(q.frames) >= q.limit:
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room = q.room
		q.mu.Unlock()
		return false, room, false
	}
	if q.frames == nil {
		q.frames, q.spare = q.spare, nil
	}
	q.frames = append(q.frames, f)
	wake := len(q.frames) == 1
	q.mu.Unlock()
	if wake {
		select { // never blocks: one token is enough
		case q.ready <- struct{}{}:
		default:
		}
	}
	return true, nil, false
}

// tryPush appends f if there is room and the queue is open.
func (q *sendQueue) tryPush(f outFrame) bool {
	ok, _, _ := q.push(f)
	return ok
}

// take removes and returns every waiting frame, oldest first (nil if none),
// and wakes the senders waiting for room. The caller hands the slice back
// with recycle once it is done with the frames.
func (q *sendQueue) take() []outFrame {
	q.mu.Lock()
	batch := q.frames
	q.frames = nil
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
	return batch
}

// recycle gives back a batch that take returned, for reuse.
func (q *sendQueue) recycle(batch []outFrame) {
	clear(batch) // let the payloads go
	q.mu.Lock()
	if !q.closed && cap(batch) > cap(q.spare) {
		q.spare = batch[:0]
	}
	q.mu.Unlock()
}

// maxIdleSpare is the largest batch (in frames) an idle link keeps.
const maxIdleSpare = 64

// trim lets a large spare batch go; the writer calls it when the link has
// been idle, so that a burst's batch is not held for ever.
func (q *sendQueue) trim() {
	q.mu.Lock()
	if cap(q.spare) > maxIdleSpare {
		q.spare = nil
	}
	q.mu.Unlock()
}

// close stops the queue from accepting frames and returns those still
// waiting. Every frame push accepted is either taken before close or
// returned by it: exactly once.
func (q *sendQueue) close() []outFrame {
	q.mu.Lock()
	q.closed = true
	rest := q.frames
	q.frames, q.spare = nil, nil
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
	return rest
}

// depth returns the number of frames waiting.
func (q *sendQueue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames)
}
