package cluster

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/internal/wire"
)

// A link's writer: the send queue to the conn, in batches, with heartbeats
// when idle and a goodbye at the end.

func (l *link) writeLoop() {
	w := newFrameWriter(l.conn)
	w.enc = l.cfg.codec.NewEncoder(&w.encBuf)
	// The heartbeat's timer restarts after each burst: it fires after a
	// healthy interval in which the writer wrote nothing. Restarted before
	// every wait, it is never already due when the writer selects on it,
	// even after a write that blocked for longer; a due timer would be run
	// by this goroutine, which the race detector does not survive in a
	// synctest bubble (internal/racerepro).
	tick := time.NewTimer(l.cfg.healthy)
	defer tick.Stop()
	defer l.dropQueued()
	defer l.stopDirect() // before the queue closes
	// Every write to the conn holds wmu: a sender may write a frame
	// directly between two of the writer's bursts, never inside one.
	l.wmu.lock()
	if l.first != nil {
		err := w.control(l.first)
		l.first = nil // the view is sent; let it go
		if err == nil {
			err = l.writeQueued(w)
		}
		if err != nil {
			l.wmu.unlock()
			l.shutdown(err)
			return
		}
	}
	l.direct.Store(true)
	l.wmu.unlock()
	for {
		tick.Reset(l.cfg.healthy)
		select {
		case <-l.queue.ready:
			l.wmu.lock()
			err := l.writeQueued(w)
			l.wmu.unlock()
			if err != nil {
				l.shutdown(err)
				return
			}
		case <-tick.C:
			if err := l.beat(w); err != nil {
				l.shutdown(err)
				return
			}
		case <-l.leaving:
			l.direct.Store(false) // nothing may follow the goodbye
			l.wmu.lock()
			l.sayGoodbye(w)
			l.wmu.unlock()
			return
		case <-l.done:
			return
		}
	}
}

// beat is the writer's tick on a link it has not written to for a healthy
// interval: a heartbeat, unless frames wait (the rest of a frame a direct
// send began, perhaps, which nothing may precede); those go out instead,
// and say as much.
func (l *link) beat(w *frameWriter) error {
	l.queue.trim()
	l.wmu.lock()
	defer l.wmu.unlock()
	if !l.queue.idle() {
		return l.writeQueued(w)
	}
	err := w.frame(wire.FrameHeartbeat, nil)
	if err == nil {
		err = w.flush()
	}
	return err
}

// writeQueued writes everything queued, batch after batch until the queue
// is empty, then flushes: one flush per burst, not per message.
func (l *link) writeQueued(w *frameWriter) error {
	for {
		b := l.queue.take()
		if len(b.frames) == 0 {
			return w.flush()
		}
		err := l.writeBatch(w, b)
		l.queue.recycle(b)
		if err != nil {
			return err
		}
	}
}

// writeBatch writes a batch's frames in order. The small data frames are
// the batch's bytes: each run of them between two frames of their own is
// written as it lies.
func (l *link) writeBatch(w *frameWriter, b batch) error {
	var msgs, bytes uint64
	defer func() {
		l.stats.msgsOut.Add(msgs)
		l.stats.bytesOut.Add(bytes)
	}()
	pos, prev := 0, 0 // the bytes written so far; the end of the last frame
	for i, f := range b.frames {
		if f.small() {
			msgs++
			bytes += uint64(f.end - prev - wire.FrameHeaderLen)
			prev = f.end
			continue
		}
		if err := w.raw(b.bytes[pos:f.end]); err != nil {
			l.dropFrames(b.frames[i:])
			return err
		}
		pos = f.end
		var err error
		switch {
		case f.ctl != nil:
			err = w.control(f.ctl)
		case f.cont: // the message is whole on the wire once this is
			msgs++
			bytes += uint64(f.size)
			err = w.raw(f.data.b)
			f.data.release()
		default:
			msgs++
			bytes += uint64(len(f.data.b))
			err = w.frame(wire.FrameData, f.data.b)
			f.data.release() // the bytes are in the buffer, or written
		}
		if err != nil {
			l.dropFrames(b.frames[i+1:])
			return err
		}
	}
	return w.raw(b.bytes[pos:])
}

// sayGoodbye flushes what is queued, sends a goodbye, and lingers until
// the remote closes its end (it does once it reads the goodbye) or one
// healthy interval passes, so that closing cannot reset the connection
// before the goodbye is read.
func (l *link) sayGoodbye(w *frameWriter) {
	deadline := time.Now().Add(l.cfg.healthy)
	l.conn.SetWriteDeadline(deadline)
	err := l.writeQueued(w)
	if err == nil {
		err = w.frame(wire.FrameGoodbye, nil)
	}
	if err == nil {
		err = w.flush()
	}
	// Wait for the remote to close, unless the writes took all the time (a
	// timer made already due would be run by this goroutine; see rejoin).
	if d := time.Until(deadline); err == nil && d > 0 {
		t := time.NewTimer(d)
		select {
		case <-l.readerDone:
		case <-l.done:
		case <-t.C:
		}
		t.Stop()
	}
	l.shutdown(errLeft)
}

// stopDirect ends direct sends as the writer stops, and waits for one in
// progress: it finishes, and counts its message, before the queue closes
// and the link's counters are folded into the node's. (A direct sender
// never waits while it holds wmu.)
func (l *link) stopDirect() {
	l.direct.Store(false)
	l.wmu.lock()
	l.wmu.unlock()
}

// dropQueued closes the queue of a link that is down and counts the
// messages that will never be sent. The writer calls it on its way out;
// a Send after it fails, so every accepted message is written or counted
// here, once.
func (l *link) dropQueued() {
	l.dropFrames(l.queue.close())
}

// dropFrames releases frames that will not be written and counts the
// messages among them.
func (l *link) dropFrames(fs []outFrame) {
	var dropped uint64
	for _, f := range fs {
		if f.ctl == nil {
			dropped++
		}
		f.drop()
	}
	if dropped > 0 {
		l.cfg.owner.countDropped(l, dropped)
	}
}

// frameWriter writes frames to a conn through a buffer; only the writer
// goroutine uses it. The buffer is taken from a pool for each burst and
// given back by flush, so that an idle link holds no write buffer. A
// payload too large for the buffer's room is not copied into it: the
// buffered frames and the payload go out together in one vectored write
// (writev) where the conn supports one, else one after the other.
type frameWriter struct {
	conn     net.Conn
	vectored bool    // conn does writev for net.Buffers
	buf      *[]byte // pooled; nil between bursts
	enc      codec.Encoder
	encBuf   encodeBuffer
	vec      [2][]byte
	bufs     net.Buffers
}

// A burst starts in a small buffer, from smallWriteBuffers, and moves to
// a linkBufferSize one, from writeBuffers, if it outgrows it: a link's
// heartbeats and peer lists need no more.
const smallWriteBuffer = 2 << 10

var (
	writeBuffers      = sync.Pool{New: func() any { b := make([]byte, 0, linkBufferSize); return &b }}
	smallWriteBuffers = sync.Pool{New: func() any { b := make([]byte, 0, smallWriteBuffer); return &b }}
)

// reserve makes sure the burst has a buffer and, if a larger one would
// hold n more bytes where the one it has would not, moves to it.
func (w *frameWriter) reserve(n int) {
	if w.buf == nil {
		if n <= smallWriteBuffer {
			w.buf = smallWriteBuffers.Get().(*[]byte)
		} else {
			w.buf = writeBuffers.Get().(*[]byte)
		}
		return
	}
	if b := *w.buf; cap(b) < linkBufferSize && len(b)+n > cap(b) {
		big := writeBuffers.Get().(*[]byte)
		*big = append((*big)[:0], b...)
		w.putBuf()
		w.buf = big
	}
}

// putBuf gives the buffer back to its pool.
func (w *frameWriter) putBuf() {
	*w.buf = (*w.buf)[:0]
	if cap(*w.buf) < linkBufferSize {
		smallWriteBuffers.Put(w.buf)
	} else {
		writeBuffers.Put(w.buf)
	}
	w.buf = nil
}

func newFrameWriter(c net.Conn) *frameWriter {
	w := &frameWriter{conn: c}
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn: // net.Buffers.WriteTo uses writev on these only
		w.vectored = true
	}
	return w
}

// flush writes out the burst and releases the buffer.
func (w *frameWriter) flush() error {
	if w.buf == nil {
		return nil
	}
	var err error
	if b := *w.buf; len(b) > 0 {
		_, err = w.conn.Write(b)
	}
	w.putBuf()
	return err
}

// A payload of vectoredMin bytes or more that does not fit in the
// buffer's room goes out with the buffered bytes in one vectored write
// (writev) instead of being copied through the buffer as bufio.Writer
// does. Measured over TCP loopback, ratios to raw, vectored and copied
// builds alternating (go run ./bench/cmd/report -sections throughput
// -transports tcp -sizes ...):
//   - 16 KiB: handler 1.0-1.1x vectored, 0.75-0.9x copied;
//   - 64 KiB, nine pairs: handler 0.78-1.20x (median 0.92) against
//     0.81-0.99x (0.85); Inbox 0.52-0.79x (0.73) against 0.59-0.85x (0.68);
//   - 256 KiB: within noise.
//
// (An earlier build of the writer measured 0.3x against 0.65-0.7x at 64
// KiB, and copied payloads above 32 KiB.)
const vectoredMin = linkBufferSize / 2

func (w *frameWriter) frame(typ byte, body []byte) error {
	w.reserve(wire.FrameHeaderLen + len(body))
	if b := *w.buf; len(b)+wire.FrameHeaderLen > cap(b) {
		*w.buf = b[:0]
		if _, err := w.conn.Write(b); err != nil {
			return err
		}
	}
	*w.buf = wire.AppendFrameHeader(*w.buf, typ, len(body))
	return w.raw(body)
}

// raw writes p after what is buffered: copied into the buffer if it fits
// in its room, else written from where it lies.
func (w *frameWriter) raw(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	w.reserve(len(p))
	b := *w.buf
	if len(b)+len(p) <= cap(b) {
		*w.buf = append(b, p...)
		return nil
	}
	*w.buf = b[:0]
	switch {
	case len(b) == 0:
		_, err := w.conn.Write(p)
		return err
	case w.vectored && len(p) >= vectoredMin:
		w.vec = [2][]byte{b, p}
		w.bufs = w.vec[:]
		_, err := w.bufs.WriteTo(w.conn)
		w.vec = [2][]byte{}
		return err
	}
	// As bufio.Writer does: fill the buffer, write it, then write the rest
	// from where it lies if it is a buffer's worth, else buffer it.
	k := copy(b[len(b):cap(b)], p)
	if _, err := w.conn.Write(b[:len(b)+k]); err != nil {
		return err
	}
	if rest := p[k:]; len(rest) >= cap(b) {
		_, err := w.conn.Write(rest)
		return err
	} else {
		*w.buf = append(b[:0], rest...)
	}
	return nil
}

func (w *frameWriter) control(c *wire.Control) error {
	w.encBuf.get()
	defer w.encBuf.release()
	if err := w.enc.Encode(c); err != nil {
		return &protocolError{"encoding control message", err}
	}
	if len(w.encBuf.b) > maxControlSize {
		return &protocolError{"encoding control message", errors.New("exceeds control frame limit")}
	}
	return w.frame(wire.FrameControl, w.encBuf.b)
}

// encodeBuffer is what a link's encoder writes a control message to: a
// buffer from encodeBuffers for the one message, so that no link keeps
// one between messages (a full view's can be large).
type encodeBuffer struct {
	p *[]byte // from encodeBuffers
	b []byte
}

func (e *encodeBuffer) get() {
	e.p = encodeBuffers.Get().(*[]byte)
	e.b = (*e.p)[:0]
}

func (e *encodeBuffer) Write(p []byte) (int, error) {
	e.b = append(e.b, p...)
	return len(p), nil
}

// release gives the buffer back (unless a huge view outgrew what the
// pool keeps).
func (e *encodeBuffer) release() {
	if cap(e.b) <= maxPooledEncoding {
		*e.p = e.b[:0]
		encodeBuffers.Put(e.p)
	}
	e.p, e.b = nil, nil
}

var encodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, smallWriteBuffer); return &b }}

// maxPooledEncoding is the largest encoding buffer encodeBuffers keeps.
const maxPooledEncoding = 256 << 10

// protocolError is a peer breaking the protocol after the handshake.
type protocolError struct {
	what string
	err  error
}

func (e *protocolError) Error() string { return "protocol violation: " + e.what + ": " + e.err.Error() }
func (e *protocolError) Unwrap() error { return e.err }
