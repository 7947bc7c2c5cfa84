package cluster

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/peerkit/peerkit/internal/wire"
)

func isClosedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// The send queue: bounded in frames, small payloads laid out as whole
// frames in its bytes, one wake-up token for the writer, room signalled
// to waiters when the writer takes a batch, and after close nothing
// accepted and every frame accounted for once.
func TestSendQueue(t *testing.T) {
	q := newSendQueue(6) // 3 waiting, 3 with the writer
	if q.cur.frames != nil || q.cur.bytes != nil {
		t.Fatal("a new queue holds memory")
	}
	ctl := &wire.Control{MetaSet: true}
	for i, push := range []func() (bool, <-chan struct{}, bool){
		func() (bool, <-chan struct{}, bool) { return q.pushSmall([]byte("ab")) },
		func() (bool, <-chan struct{}, bool) { return q.push(outFrame{ctl: ctl}) },
		func() (bool, <-chan struct{}, bool) { return q.pushSmall(nil) },
	} {
		if ok, _, closed := push(); !ok || closed {
			t.Fatalf("push %d into a queue with room: ok=%v closed=%v", i, ok, closed)
		}
	}
	if len(q.ready) != 1 {
		t.Fatalf("the writer has %d wake-up tokens, want 1", len(q.ready))
	}
	ok, room, closed := q.pushSmall([]byte("x"))
	if ok || closed || room == nil || isClosedChan(room) {
		t.Fatalf("push into a full queue: ok=%v closed=%v room=%v", ok, closed, room)
	}
	if q.depth() != 3 {
		t.Fatalf("depth %d, want 3", q.depth())
	}

	b := q.take()
	if q.depth() != 3 {
		t.Fatalf("depth %d with the batch in the writer's hands, want 3", q.depth())
	}
	if !isClosedChan(room) {
		t.Fatal("taking a batch did not signal room")
	}
	var want []byte
	want = wire.AppendFrameHeader(want, wire.FrameData, 2)
	want = append(want, "ab"...)
	want = wire.AppendFrameHeader(want, wire.FrameData, 0)
	if !bytes.Equal(b.bytes, want) {
		t.Fatalf("batch bytes % x, want % x", b.bytes, want)
	}
	if len(b.frames) != 3 || !b.frames[0].small() || b.frames[0].end != 7 ||
		b.frames[1].ctl != ctl || b.frames[1].end != 7 || !b.frames[2].small() || b.frames[2].end != 12 {
		t.Fatalf("batch frames %+v", b.frames)
	}
	q.recycle(b)
	if q.depth() != 0 || len(q.take().frames) != 0 {
		t.Fatal("the queue is not empty after take and recycle")
	}

	// A push after take reuses the recycled batch and wakes the writer.
	<-q.ready
	if ok, _, _ := q.pushSmall([]byte("c")); !ok || len(q.ready) != 1 {
		t.Fatal("a push into an empty queue did not wake the writer")
	}
	if cap(q.cur.frames) < 3 {
		t.Fatal("the recycled batch was not reused")
	}

	rest := q.close()
	if len(rest) != 1 || !rest[0].small() {
		t.Fatalf("close returned %+v, want the one small frame", rest)
	}
	if ok, _, closed := q.pushSmall([]byte("d")); ok || !closed {
		t.Fatal("a closed queue accepted a frame")
	}
	if len(q.close()) != 0 {
		t.Fatal("a second close returned frames again")
	}
}

// Waiting and in the writer's hands together, a queue holds at most its
// limit (plus one, for an odd limit), however long the writer holds a
// batch: a channel of the limit, with one frame in the writer's hands,
// held as many.
func TestSendQueueBound(t *testing.T) {
	for _, limit := range []int{1, 2, 5, 1024} {
		q := newSendQueue(limit)
		accepted := 0
		fill := func() {
			for {
				ok, room, _ := q.pushSmall([]byte("x"))
				if !ok {
					if isClosedChan(room) {
						t.Fatal("a full queue's room channel is closed")
					}
					return
				}
				accepted++
			}
		}
		fill()
		b := q.take() // the writer holds this batch, its conn blocked
		fill()
		if accepted > limit+limit%2 || accepted < limit {
			t.Fatalf("limit %d: %d messages accepted while the writer held a batch", limit, accepted)
		}
		if q.depth() != accepted {
			t.Fatalf("limit %d: depth %d, want %d", limit, q.depth(), accepted)
		}
		q.recycle(b)
		if q.depth() != accepted-len(b.frames) {
			t.Fatalf("limit %d: depth %d after the batch was written", limit, q.depth())
		}
	}
}

// An idle writer's trim lets a burst's large batches go.
func TestSendQueueTrim(t *testing.T) {
	q := newSendQueue(1000)
	burst := func() batch {
		for range 500 {
			q.pushSmall(make([]byte, 100))
		}
		return q.take()
	}
	b1 := burst()
	b2 := burst() // filled while the writer held b1
	q.recycle(b1)
	q.recycle(b2)
	if cap(q.cur.frames) < 500 || cap(q.spare.frames) < 500 {
		t.Fatal("the burst's two batches were not kept for the next one")
	}
	q.trim()
	if q.spare.frames != nil || q.spare.bytes != nil || q.cur.frames != nil || q.cur.bytes != nil {
		t.Fatal("trim kept a large batch")
	}
}

// A writer that keeps up with its sender, taking each frame before the
// next comes, reuses the queue's two batches: the queue allocates nothing
// once warm. (It once kept one batch, dropping the other whenever the
// writer recycled a batch before a sender had taken the spare, so every
// other burst grew a new batch from nothing.)
func TestSendQueueReusesBatches(t *testing.T) {
	q := newSendQueue(1024)
	p := make([]byte, 1000)
	cycle := func() {
		q.pushSmall(p)
		b1 := q.take()
		q.pushSmall(p) // the writer holds b1: this fills the other batch
		q.recycle(b1)
		b2 := q.take()
		q.recycle(b2) // the writer was faster: nothing waits
	}
	cycle()
	if allocs := testing.AllocsPerRun(100, cycle); allocs != 0 {
		t.Fatalf("%v allocations per cycle, want 0", allocs)
	}
}

// A queue is idle only with nothing waiting and nothing in the writer's
// hands (a direct send may then write); pushFront puts the rest of a
// partly written frame ahead of what waits, past the limit, and wakes the
// writer.
func TestSendQueueIdleAndPushFront(t *testing.T) {
	q := newSendQueue(2) // 1 waiting, 1 with the writer
	if !q.idle() {
		t.Fatal("a new queue is not idle")
	}
	q.pushSmall([]byte("a"))
	if q.idle() {
		t.Fatal("a queue with a frame waiting is idle")
	}
	b := q.take()
	if q.idle() {
		t.Fatal("a queue whose batch is in the writer's hands is idle")
	}
	q.recycle(b)
	if !q.idle() {
		t.Fatal("an emptied queue is not idle")
	}
	<-q.ready
	q.pushSmall([]byte("b")) // the queue is now full
	rest := newPayloadSize(3)
	copy(rest.b, "end")
	if !q.pushFront(outFrame{data: rest, cont: true}) {
		t.Fatal("pushFront into an open queue failed")
	}
	b = q.take()
	if len(b.frames) != 2 || !b.frames[0].cont || b.frames[0].end != 0 || !b.frames[1].small() {
		t.Fatalf("batch frames %+v: want the continuation first", b.frames)
	}
	q.recycle(b)
	q.close()
	if q.pushFront(outFrame{data: rest, cont: true}) {
		t.Fatal("pushFront into a closed queue succeeded")
	}
}

// fragments reads its bytes in pieces of random sizes.
type fragments struct {
	b []byte
	r *rand.Rand
}

func (f *fragments) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(f.b), 1+f.r.IntN(3*linkBufferSize))
	n = copy(p, f.b[:n])
	f.b = f.b[n:]
	return n, nil
}

// reads returns its chunks, one per Read, then io.EOF.
type reads struct{ chunks [][]byte }

func (r *reads) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	if r.chunks[0] = r.chunks[0][n:]; len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

// The frame reader returns every frame's body whole, lent or owned,
// however the bytes arrive; it holds no large buffer once the data
// stops; a frame cut short is io.ErrUnexpectedEOF.
func TestFrameReader(t *testing.T) {
	sizes := []int{0, 1, 100, smallReadBuffer - wire.FrameHeaderLen, smallReadBuffer, smallReadBuffer + 1, 4000, linkBufferSize - 1, linkBufferSize, linkBufferSize + 1, 64 << 10, 200 << 10}
	r := rand.New(rand.NewPCG(5, 6))
	var stream []byte
	var bodies [][]byte
	for range 300 {
		body := make([]byte, sizes[r.IntN(len(sizes))])
		for i := range body {
			body[i] = byte(r.Uint32())
		}
		bodies = append(bodies, body)
		stream = wire.AppendFrameHeader(stream, wire.FrameData, len(body))
		stream = append(stream, body...)
	}
	for _, own := range []bool{false, true} {
		fr := &frameReader{src: &fragments{b: stream, r: r}}
		for i, want := range bodies {
			if err := fr.fill(wire.FrameHeaderLen); err != nil {
				t.Fatalf("frame %d header: %v", i, err)
			}
			typ, n, err := wire.ParseFrameHeader(fr.buffered(), 1<<20, 1<<20)
			if err != nil || typ != wire.FrameData || n != len(want) {
				t.Fatalf("frame %d: header %v %d %v, want a data frame of %d", i, typ, n, err, len(want))
			}
			fr.discard(wire.FrameHeaderLen)
			got, held, err := fr.body(n, own)
			if err != nil {
				t.Fatalf("frame %d body: %v", i, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("frame %d (%d bytes, own=%v) garbled", i, n, own)
			}
			held.release()
		}
		if err := fr.fill(1); err != io.EOF {
			t.Fatalf("after the last frame: %v, want io.EOF", err)
		}
		fr.release()
	}

	// Quiet again after a burst: once a read brings little (a heartbeat),
	// the reader waits for the next bytes with its small buffer only.
	script := &reads{chunks: [][]byte{make([]byte, linkBufferSize), make([]byte, linkBufferSize), make([]byte, 5)}}
	fr := &frameReader{src: script}
	checked := false
	for fr.fill(1) == nil {
		if len(script.chunks) == 0 && fr.big != nil && fr.w-fr.r == 5 {
			// The heartbeat is buffered; the next wait must not hold
			// the large buffer.
			fr.discard(5)
			if fr.fill(1); fr.big != nil {
				t.Fatal("the reader waits with its large buffer after the data stopped")
			}
			checked = true
			break
		}
		fr.discard(fr.w - fr.r)
	}
	if !checked {
		t.Fatal("the burst never took the large buffer: the test tests nothing")
	}

	// Cut short, inside a header and inside a body.
	for _, cut := range []int{3, wire.FrameHeaderLen + 10} {
		b := wire.AppendFrameHeader(nil, wire.FrameData, 100)
		b = append(b, make([]byte, 100)...)
		fr := &frameReader{src: bytes.NewReader(b[:cut])}
		err := fr.fill(wire.FrameHeaderLen)
		if err == nil {
			fr.discard(wire.FrameHeaderLen)
			_, _, err = fr.body(100, false)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
}

// countingReader serves its bytes as fast as asked and counts the reads.
type countingReader struct {
	b     []byte
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	c.reads++
	n := copy(p, c.b)
	c.b = c.b[n:]
	return n, nil
}

// A stream of small frames moves the reader to its large buffer, however
// the frames fall across reads: a read that fills a small buffer already
// holding part of a frame counts as filling it. (It did not, and a stream
// of 64 B messages was read 512 bytes at a time.)
func TestFrameReaderStreamsThroughLargeBuffer(t *testing.T) {
	var stream []byte
	const frames = 20000
	for range frames {
		stream = wire.AppendFrameHeader(stream, wire.FrameData, 64)
		stream = append(stream, make([]byte, 64)...)
	}
	src := &countingReader{b: stream}
	fr := &frameReader{src: src}
	for i := range frames {
		if err := fr.fill(wire.FrameHeaderLen); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		fr.discard(wire.FrameHeaderLen)
		if _, held, err := fr.body(64, false); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		} else {
			held.release()
		}
	}
	// 1.38 MB: about 85 reads of 16 KiB; 2700 of 512 B.
	if most := len(stream)/(linkBufferSize/2) + 10; src.reads > most {
		t.Fatalf("%d reads for %d bytes of small frames, want at most %d: the stream stayed on the small buffer", src.reads, len(stream), most)
	}
}
