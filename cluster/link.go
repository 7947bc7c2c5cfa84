package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/internal/wire"
)

const linkBufferSize = 16 << 10

var (
	errGoodbye  = errors.New("remote said goodbye")
	errLeft     = errors.New("closed locally")
	errReplaced = errors.New("replaced by a new instance")
	errAborted  = errors.New("node aborted")
)

// outFrame is one frame waiting in a link's send queue: a data payload
// (already copied from the caller; the queue holds one reference to it) or
// a control message (encoded by the writer, which owns the link's stream
// encoder).
type outFrame struct {
	data *payload
	ctl  *wire.Control
}

// drop releases what f holds, for a frame that will not be written.
func (f outFrame) drop() {
	if f.data != nil {
		f.data.release()
	}
}

// link is one live connection to one remote. It owns two goroutines: the
// reader (frames to the Inbox or to membership) and the writer (the send
// queue to the conn, batched, with heartbeats when idle).
type link struct {
	n      *Node
	peer   *peer
	conn   net.Conn
	dialed bool // this node dialled the conn
	// caps are the protocol capabilities both hellos announced: a frame
	// type or control field that needs one is sent only if it is here.
	caps byte

	first      *wire.Control // the view sent before anything queued; set before start
	queue      chan outFrame
	done       chan struct{} // closed by shutdown
	leaving    chan struct{} // closed by leave: say goodbye, then shut down
	readerDone chan struct{}
	closeOnce  sync.Once
	leaveOnce  sync.Once

	heard   atomic.Int64 // unix nanoseconds when bytes last arrived
	stats   linkStats
	running atomic.Int32 // goroutines of the link still running
	retired bool         // counters folded into the node's totals; guarded by Node.mu
}

func newLink(n *Node, p *peer, conn net.Conn, dialed bool, caps byte) *link {
	l := &link{
		n:          n,
		peer:       p,
		conn:       conn,
		dialed:     dialed,
		caps:       caps,
		queue:      make(chan outFrame, n.opts.sendQueueSize),
		done:       make(chan struct{}),
		leaving:    make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	l.heard.Store(time.Now().UnixNano())
	return l
}

// start runs the link's goroutines; the node's WaitGroup owns them. The
// last of the two to stop folds the link's counters into the node's
// totals: until then either may still count.
func (l *link) start() {
	l.running.Store(2)
	l.n.wg.Go(func() { l.readLoop(); l.stopped() })
	l.n.wg.Go(func() { l.writeLoop(); l.stopped() })
}

func (l *link) stopped() {
	if l.running.Add(-1) == 0 {
		l.n.retire(l)
	}
}

// shutdown ends the link at once, for cause, and tells membership. It must
// not be called with the node's lock held.
func (l *link) shutdown(cause error) {
	l.closeOnce.Do(func() {
		close(l.done)
		l.conn.Close()
		l.n.linkDown(l, cause)
	})
}

// leave asks the writer to flush what is queued, send a goodbye and close.
//
// A writer blocked in Write (a peer that does not read) would never see the
// request, so leave also gives the conn's writes the linger deadline: the
// goodbye goes out within it, or the link is dropped.
func (l *link) leave() {
	l.leaveOnce.Do(func() {
		close(l.leaving)
		l.conn.SetWriteDeadline(time.Now().Add(l.n.opts.healthyInterval))
	})
}

// enqueue waits for room in the send queue until ctx ends, the link goes
// down, or the network timeout passes.
func (l *link) enqueue(ctx context.Context, f outFrame) error {
	// One channel per select: a single-case select with a default is a
	// lock-free check, where a multi-case one locks every channel.
	select {
	case <-l.done:
		return ErrUnknownRemote
	default:
	}
	select {
	case <-l.leaving:
		return ErrUnknownRemote
	default:
	}
	select {
	case l.queue <- f:
		l.queued()
		return nil
	default:
	}
	t := time.NewTimer(l.n.opts.networkTimeout)
	defer t.Stop()
	select {
	case l.queue <- f:
		l.queued()
		return nil
	case <-l.done:
		return ErrUnknownRemote
	case <-l.leaving:
		return ErrUnknownRemote
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ErrSendTimeout
	}
}

// queued is called after every frame put in the queue. The writer drains
// the queue once, on its way out, after done is closed; a frame queued
// after that drain would sit in the queue for ever, neither written nor
// counted. So if done is closed by now, the sender drains the queue
// itself. If it is not, the writer's drain is still to come, and sees the
// frame. Each frame leaves the queue once, so none is counted twice.
func (l *link) queued() {
	select {
	case <-l.done:
		l.dropQueued()
	default:
	}
}

// tryEnqueue queues a control frame if there is room, without waiting. It
// may be called under the node's lock. (A control frame left in the queue
// of a link that is down holds nothing to count or release, so it needs
// no queued.)
func (l *link) tryEnqueue(f outFrame) bool {
	select {
	case l.queue <- f:
		return true
	default:
		l.stats.shed.Add(1)
		return false
	}
}

// deadlineReader gives every read that has to wait on the network the
// network timeout: liveness is judged only while the reader waits on the
// network, never while it waits for room in the Inbox.
type deadlineReader struct{ l *link }

func (d deadlineReader) Read(p []byte) (int, error) {
	c := d.l.conn
	if err := c.SetReadDeadline(time.Now().Add(d.l.n.opts.networkTimeout)); err != nil {
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
	n := l.n
	br := bufio.NewReaderSize(deadlineReader{l}, linkBufferSize)
	var chunk wire.ChunkReader
	dec := n.opts.codec.NewDecoder(&chunk)
	var ctlBuf []byte
	from := Remote{l.peer}
	for {
		typ, size, err := wire.ReadFrameHeader(br, n.opts.maxMessageSize, maxControlSize)
		if err != nil {
			l.shutdown(readError(err))
			return
		}
		switch typ {
		case wire.FrameData:
			var buf []byte
			if size > 0 && size <= br.Buffered() {
				// The body is in the buffer: append copies it into a new
				// slice without zeroing it first, as make would. (An empty
				// payload stays a non-nil empty slice, as before.)
				b, _ := br.Peek(size)
				buf = append([]byte(nil), b...)
				br.Discard(size)
			} else {
				buf = make([]byte, size)
				if _, err := io.ReadFull(br, buf); err != nil {
					l.shutdown(readError(err))
					return
				}
			}
			l.stats.msgsIn.Add(1)
			l.stats.bytesIn.Add(uint64(size))
			m := &Message{From: from, Payload: buf}
			select { // fast path: room in the Inbox (one channel, no select lock)
			case n.inbox <- m:
				continue
			default:
			}
			select {
			case n.inbox <- m:
			case <-l.leaving: // we are leaving: the application no longer reads
			case <-l.done:
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
			n.handleControl(l, &c)
		case wire.FrameHeartbeat:
		case wire.FrameGoodbye:
			n.remoteLeft(l)
			return
		}
	}
}

func (l *link) writeLoop() {
	n := l.n
	w := &frameWriter{conn: l.conn}
	w.enc = n.opts.codec.NewEncoder(&w.encBuf)
	tick := time.NewTicker(n.opts.healthyInterval)
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
	deadline := time.Now().Add(l.n.opts.healthyInterval)
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
		l.n.countDropped(l, dropped)
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

// enqueueAll queues f, which holds one reference per link, for every link
// of full, waiting for room in all of their queues at once until ctx ends
// or timeout passes: each link gets f as soon as its queue has room, and a
// link whose queue stays full delays no other. The reference of each link
// that does not get f is released. The error joins the failures.
func enqueueAll(ctx context.Context, full []*link, f outFrame, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	// Cases 0 and 1 end the wait; then three per link: room in its queue,
	// the link down, the link leaving.
	const perLink = 3
	cases := make([]reflect.SelectCase, 2, 2+perLink*len(full))
	cases[0] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}
	cases[1] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(t.C)}
	fv := reflect.ValueOf(f)
	for _, l := range full {
		cases = append(cases,
			reflect.SelectCase{Dir: reflect.SelectSend, Chan: reflect.ValueOf(l.queue), Send: fv},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(l.done)},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(l.leaving)})
	}
	pending := slices.Clone(full)
	var errs []error
	fail := func(l *link, err error) {
		f.drop()
		errs = append(errs, fmt.Errorf("%s: %w", l.peer.addr, err))
	}
	for len(pending) > 0 {
		chosen, _, _ := reflect.Select(cases)
		if chosen < 2 {
			err := ErrSendTimeout
			if chosen == 0 {
				err = ctx.Err()
			}
			for _, l := range pending {
				fail(l, err)
			}
			break
		}
		i := (chosen - 2) / perLink
		l := pending[i]
		if (chosen-2)%perLink == 0 {
			l.queued()
		} else {
			fail(l, ErrUnknownRemote)
		}
		// Remove link i: move the last link's cases into its place.
		last := len(pending) - 1
		pending[i] = pending[last]
		pending = pending[:last]
		copy(cases[2+i*perLink:2+(i+1)*perLink], cases[2+last*perLink:])
		cases = cases[:2+last*perLink]
	}
	return errors.Join(errs...)
}
