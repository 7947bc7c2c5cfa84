package cluster

import (
	"bufio"
	"errors"
	"io"
	"net"
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
	br := bufio.NewReaderSize(deadlineReader{l}, linkBufferSize)
	var chunk wire.ChunkReader
	dec := cfg.codec.NewDecoder(&chunk)
	var ctlBuf []byte
	for {
		typ, size, err := wire.ReadFrameHeader(br, cfg.maxMessage, maxControlSize)
		if err != nil {
			l.shutdown(readError(err))
			return
		}
		switch typ {
		case wire.FrameData:
			if !l.deliver(br, size) {
				return
			}
		case wire.FrameControl:
			if cap(ctlBuf) < size {
				ctlBuf = make([]byte, size)
			}
			ctlBuf = ctlBuf[:size]
			if _, err := io.ReadFull(br, ctlBuf); err != nil {
				l.shutdown(readError(err))
				return
			}
			var c wire.Control
			if err := wire.DecodeControl(dec, &chunk, ctlBuf, &c); err != nil {
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

// deliver reads a data frame's size-byte body and hands it to the Inbox,
// waiting for room there (not on the network: liveness is not judged
// meanwhile). It reports false if the link is done.
func (l *link) deliver(br *bufio.Reader, size int) bool {
	var buf []byte
	if size > 0 && size <= br.Buffered() {
		// The body is in the buffer: append copies it into a new slice
		// without zeroing it first, as make would. (An empty payload stays
		// a non-nil empty slice.)
		b, _ := br.Peek(size)
		buf = append([]byte(nil), b...)
		br.Discard(size)
	} else {
		buf = make([]byte, size)
		if _, err := io.ReadFull(br, buf); err != nil {
			l.shutdown(readError(err))
			return false
		}
	}
	l.stats.msgsIn.Add(1)
	l.stats.bytesIn.Add(uint64(size))
	m := &Message{From: Remote{l.peer}, Payload: buf}
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
