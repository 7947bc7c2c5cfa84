package cluster

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/peerkit/peerkit/internal/wire"
)

// A link's reader: frames from the conn to the Inbox or to the owner.

// deadlineReader gives every read that has to wait on the network the
// network timeout: liveness is judged only while the reader waits on the
// network, never while it waits for room in the Inbox.
type deadlineReader struct{ l *link }

func (d deadlineReader) Read(p []byte) (int, error) {
	c := d.l.conn
	if err := c.SetReadDeadline(time.Now().Add(d.l.cfg.timeout)); err != nil {
		return 0, err
	}
	n, err := c.Read(p)
	if n > 0 {
		d.l.heard.Store(time.Now().UnixNano())
	}
	return n, err
}

func (l *link) readLoop() {
	defer close(l.readerDone)
	cfg := l.cfg
	fr := &frameReader{src: deadlineReader{l}}
	defer fr.release()
	var chunk wire.ChunkReader
	dec := cfg.codec.NewDecoder(&chunk)
	for {
		if err := fr.fill(wire.FrameHeaderLen); err != nil {
			l.shutdown(readError(err))
			return
		}
		typ, size, err := wire.ParseFrameHeader(fr.buffered(), cfg.maxMessage, maxControlSize)
		if err != nil {
			l.shutdown(readError(err))
			return
		}
		fr.discard(wire.FrameHeaderLen)
		switch typ {
		case wire.FrameData:
			if !l.deliver(fr, size) {
				return
			}
		case wire.FrameControl:
			body, held, err := fr.body(size, false)
			if err != nil {
				l.shutdown(readError(err))
				return
			}
			var c wire.Control
			err = wire.DecodeControl(dec, &chunk, body, &c)
			held.release()
			if err != nil {
				l.shutdown(&protocolError{"decoding control message", err})
				return
			}
			cfg.owner.handleControl(l, &c)
		case wire.FrameHeartbeat:
		case wire.FrameGoodbye:
			cfg.owner.remoteLeft(l)
			return
		}
	}
}

// deliver reads a data frame's size-byte body and hands it to the handler,
// or to the Inbox, waiting for room there (not on the network: liveness
// is not judged meanwhile). It reports false if the link is done.
func (l *link) deliver(fr *frameReader, size int) bool {
	h := l.cfg.handler
	body, held, err := fr.body(size, h == nil)
	if err != nil {
		l.shutdown(readError(err))
		return false
	}
	l.stats.msgsIn.Add(1)
	l.stats.bytesIn.Add(uint64(size))
	if h != nil {
		// The handler borrows the bytes: they are the read buffer's, or a
		// pooled buffer's, until it returns.
		l.msg.Payload = body
		h(&l.msg)
		l.msg.Payload = nil
		held.release()
		return true
	}
	m := &Message{From: l.msg.From, Payload: body}
	select { // fast path: room in the Inbox (one channel, no select lock)
	case l.cfg.inbox <- m:
		return true
	default:
	}
	select {
	case l.cfg.inbox <- m:
	case <-l.leaving: // we are leaving: the application no longer reads
	case <-l.done:
		return false
	}
	return true
}

// frameReader reads a link's frames through a buffer that stays small
// while the link is quiet and is a pooled linkBufferSize one while data
// streams in: an idle link holds only the small one. Bodies larger than
// the buffer are read straight into their own buffers, not through it.
type frameReader struct {
	src   io.Reader
	buf   []byte // small or *big
	r, w  int    // buf[r:w] is read and not yet consumed
	small []byte
	big   *[]byte // from readBuffers; nil while buf is small
	busy  bool    // data streams in: read with the large buffer
	fills int     // reads in a row that filled the small buffer
}

// smallReadBuffer is the size of a quiet link's read buffer: heartbeats,
// small control frames and the messages of a ping-pong fit in it.
const smallReadBuffer = 512

var readBuffers = sync.Pool{New: func() any { b := make([]byte, linkBufferSize); return &b }}

// buffered returns the bytes read and not yet consumed.
func (fr *frameReader) buffered() []byte { return fr.buf[fr.r:fr.w] }

func (fr *frameReader) discard(n int) { fr.r += n }

// fill reads until at least need bytes (at most linkBufferSize) are
// buffered.
func (fr *frameReader) fill(need int) error {
	for fr.w-fr.r < need {
		fr.prepare(need)
		n, err := fr.src.Read(fr.buf[fr.w:])
		fr.w += n
		fr.observe(n)
		if err != nil {
			if fr.w-fr.r >= need {
				return nil // the error comes back with the next read
			}
			if err == io.EOF && fr.w > fr.r {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// quietRead is a read small enough (a heartbeat, say) to say that data
// no longer streams in.
const quietRead = wire.FrameHeaderLen + 1

// observe judges from a read of n bytes whether data streams in. Two
// reads in a row that fill the small buffer say it does (one, such as a
// peer list after a quiet spell, does not); once it does, only a read as
// small as a heartbeat says it stopped. So a stream keeps the large
// buffer through the short reads of a reader that caught up, and a quiet
// link waits with the small one.
func (fr *frameReader) observe(n int) {
	switch {
	case fr.big == nil || &fr.buf[0] != &(*fr.big)[0]: // read into the small buffer
		if fr.w == len(fr.buf) { // filled it: more is likely waiting
			fr.fills++
		} else {
			fr.fills = 0
		}
		fr.busy = fr.fills >= 2
	case n < quietRead:
		fr.busy, fr.fills = false, 0
	}
}

// prepare picks the buffer for the next read: the large one while data
// streams in or when need is more than the small one holds, else the
// small one; what is buffered moves to the front of the one picked.
func (fr *frameReader) prepare(need int) {
	if fr.small == nil {
		fr.small = make([]byte, smallReadBuffer)
		fr.buf = fr.small
	}
	unread := fr.w - fr.r
	next := fr.small
	if fr.busy || need > len(fr.small) || unread > len(fr.small)/2 {
		if fr.big == nil {
			fr.big = readBuffers.Get().(*[]byte)
		}
		next = *fr.big
	}
	if fr.r > 0 || &next[0] != &fr.buf[0] {
		copy(next, fr.buf[fr.r:fr.w])
		fr.buf, fr.r, fr.w = next, 0, unread
	}
	if fr.big != nil && &next[0] != &(*fr.big)[0] {
		readBuffers.Put(fr.big)
		fr.big = nil
	}
}

// body returns the next size bytes and the pooled buffer holding them, if
// they are in one (nil otherwise; release it once done with them). It
// returns them without a copy, valid until that release and the next read, if
// they fit in the buffer and own is false; if own is true the bytes are
// a new slice that belongs to the caller. A body larger than the small
// buffer, arriving while data does not stream (a peer list, say), is read
// into a buffer of its size rather than making the link take a large one.
func (fr *frameReader) body(size int, own bool) (b []byte, held *payload, err error) {
	if size <= fr.w-fr.r || size <= len(fr.small) || size <= linkBufferSize && fr.busy {
		if err := fr.fill(size); err != nil {
			return nil, nil, err
		}
		b = fr.buf[fr.r : fr.r+size]
		fr.r += size
		if own {
			// append copies without zeroing first, as make would. (An
			// empty payload stays a non-nil empty slice.)
			b = append([]byte{}, b...)
		}
		return b, nil, nil
	}
	if own {
		b = make([]byte, size)
	} else {
		held = newPayloadSize(size)
		b = held.b
	}
	k := copy(b, fr.buf[fr.r:fr.w])
	fr.r += k
	if _, err := io.ReadFull(fr.src, b[k:]); err != nil {
		held.release()
		return nil, nil, err
	}
	return b, held, nil
}

// release gives the large buffer back, once the reader has stopped.
func (fr *frameReader) release() {
	if fr.big != nil {
		readBuffers.Put(fr.big)
		fr.big, fr.buf = nil, nil
	}
}

// readError names a silent peer as such.
func readError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errSilent
	}
	if errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrUnknownFrame) {
		return &protocolError{"frame header", err}
	}
	return err
}

var errSilent = errors.New("silent past the network timeout")
