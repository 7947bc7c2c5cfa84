package cluster

import (
	"bufio"
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
	w := &frameWriter{conn: l.conn}
	w.enc = l.cfg.codec.NewEncoder(&w.encBuf)
	tick := time.NewTicker(l.cfg.healthy)
	defer tick.Stop()
	defer l.dropQueued()
	wrote := false
	if l.first != nil {
		if err := l.writeBatch(w, outFrame{ctl: l.first}); err != nil {
			l.shutdown(err)
			return
		}
		wrote = true
	}
	for {
		select {
		case f := <-l.queue:
			if err := l.writeBatch(w, f); err != nil {
				l.shutdown(err)
				return
			}
			wrote = true
		case <-tick.C:
			if !wrote {
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

// writeBatch writes f and whatever else is queued, then flushes: one
// flush per burst, not per message.
func (l *link) writeBatch(w *frameWriter, f outFrame) error {
	for {
		if err := l.write(w, f); err != nil {
			return err
		}
		select {
		case f = <-l.queue:
			continue
		default:
		}
		return w.flush()
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
	err := func() error {
		for {
			select {
			case f := <-l.queue:
				if err := l.write(w, f); err != nil {
					return err
				}
				continue
			default:
			}
			break
		}
		if err := w.frame(wire.FrameGoodbye, nil); err != nil {
			return err
		}
		return w.flush()
	}()
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

// dropQueued empties the queue of a link that is down and counts the
// messages that will never be sent.
func (l *link) dropQueued() {
	var dropped uint64
	for {
		select {
		case f := <-l.queue:
			if f.ctl == nil {
				dropped++
			}
			f.drop()
			continue
		default:
		}
		break
	}
	if dropped > 0 {
		l.cfg.owner.countDropped(l, dropped)
	}
}

// frameWriter writes frames to a buffered conn; only the writer goroutine
// uses it. The buffer is taken from a pool for each burst and given back by
// flush, so that an idle link holds no write buffer.
type frameWriter struct {
	conn   net.Conn
	bw     *bufio.Writer // nil between bursts
	enc    codec.Encoder
	encBuf bytes.Buffer
	hdr    [wire.FrameHeaderLen]byte
}

var writeBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, linkBufferSize) }}

// flush writes out the burst and releases the buffer.
func (w *frameWriter) flush() error {
	if w.bw == nil {
		return nil
	}
	err := w.bw.Flush()
	w.bw.Reset(nil)
	writeBuffers.Put(w.bw)
	w.bw = nil
	return err
}

func (w *frameWriter) frame(typ byte, body []byte) error {
	if w.bw == nil {
		w.bw = writeBuffers.Get().(*bufio.Writer)
		w.bw.Reset(w.conn)
	}
	wire.PutFrameHeader(w.hdr[:], typ, len(body))
	if _, err := w.bw.Write(w.hdr[:]); err != nil {
		return err
	}
	_, err := w.bw.Write(body)
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
