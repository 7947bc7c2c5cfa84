package cluster

import (
	"bytes"
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
	tick := time.NewTicker(l.cfg.healthy)
	defer tick.Stop()
	defer l.dropQueued()
	wrote := false
	if l.first != nil {
		err := w.control(l.first)
		if err == nil {
			err = l.writeQueued(w)
		}
		if err != nil {
			l.shutdown(err)
			return
		}
		wrote = true
	}
	for {
		select {
		case <-l.queue.ready:
			if err := l.writeQueued(w); err != nil {
				l.shutdown(err)
				return
			}
			wrote = true
		case <-tick.C:
			if !wrote {
				l.queue.trim()
				err := w.frame(wire.FrameHeartbeat, nil)
				if err == nil {
					err = w.flush()
				}
				if err != nil {
					l.shutdown(err)
					return
				}
			}
			wrote = false
		case <-l.leaving:
			l.sayGoodbye(w)
			return
		case <-l.done:
			return
		}
	}
}

// writeQueued writes everything queued, batch after batch until the queue
// is empty, then flushes: one flush per burst, not per message.
func (l *link) writeQueued(w *frameWriter) error {
	for {
		batch := l.queue.take()
		if len(batch) == 0 {
			return w.flush()
		}
		for i, f := range batch {
			if err := l.write(w, f); err != nil {
				l.dropFrames(batch[i+1:])
				l.queue.recycle(batch)
				return err
			}
		}
		l.queue.recycle(batch)
	}
}

func (l *link) write(w *frameWriter, f outFrame) error {
	if f.ctl != nil {
		return w.control(f.ctl)
	}
	l.stats.msgsOut.Add(1)
	l.stats.bytesOut.Add(uint64(len(f.data.b)))
	err := w.frame(wire.FrameData, f.data.b)
	f.data.release() // the bytes are in the buffer, or written
	return err
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
	if err == nil {
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-l.readerDone:
		case <-l.done:
		case <-t.C:
		}
		t.Stop()
	}
	l.shutdown(errLeft)
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
	encBuf   bytes.Buffer
	vec      [2][]byte
	bufs     net.Buffers
}

// writeBuffers holds the writers' buffers, each linkBufferSize bytes.
var writeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, linkBufferSize); return &b }}

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
	*w.buf = (*w.buf)[:0]
	writeBuffers.Put(w.buf)
	w.buf = nil
	return err
}

// largeBody is the payload size from which a payload that does not fit in
// the buffer's room is written from where it lies instead of copied.
const largeBody = linkBufferSize / 2

func (w *frameWriter) frame(typ byte, body []byte) error {
	if w.buf == nil {
		w.buf = writeBuffers.Get().(*[]byte)
	}
	b := *w.buf
	if len(b)+wire.FrameHeaderLen+len(body) > cap(b) && len(body) < largeBody {
		// A small body that does not fit: write out the buffer first.
		if _, err := w.conn.Write(b); err != nil {
			return err
		}
		b = b[:0]
	}
	b = wire.AppendFrameHeader(b, typ, len(body))
	if len(b)+len(body) <= cap(b) {
		*w.buf = append(b, body...)
		return nil
	}
	*w.buf = b[:0]
	if w.vectored {
		w.vec = [2][]byte{b, body}
		w.bufs = w.vec[:]
		_, err := w.bufs.WriteTo(w.conn)
		w.vec = [2][]byte{}
		return err
	}
	if _, err := w.conn.Write(b); err != nil {
		return err
	}
	_, err := w.conn.Write(body)
	return err
}

func (w *frameWriter) control(c *wire.Control) error {
	w.encBuf.Reset()
	if err := w.enc.Encode(c); err != nil {
		return &protocolError{"encoding control message", err}
	}
	if w.encBuf.Len() > maxControlSize {
		return &protocolError{"encoding control message", errors.New("exceeds control frame limit")}
	}
	return w.frame(wire.FrameControl, w.encBuf.Bytes())
}

// protocolError is a peer breaking the protocol after the handshake.
type protocolError struct {
	what string
	err  error
}

func (e *protocolError) Error() string { return "protocol violation: " + e.what + ": " + e.err.Error() }
func (e *protocolError) Unwrap() error { return e.err }
