package codec

import (
	"bufio"
	"bytes"
	"encoding/gob"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/peerkit/peerkit/internal/wire"
)

// Gob is the default codec, built on encoding/gob. Its type information
// travels once per link.
//
// encoding/gob is not hardened against hostile input; peerkit bounds what it
// sees by the frame limit, and with cluster.WithSecret it only ever decodes
// bytes from authenticated peers. The decoder also refuses a stream that
// defines more than MaxGobTypes types: a decoder keeps every type it is
// sent for the life of the stream, so without that bound a peer could grow
// it without end.
var Gob Codec = gobCodec{}

// MaxGobTypes bounds the type definitions one gob stream may carry. An
// honest peerkit stream defines three (the control message, its peer list
// and a peer).
const MaxGobTypes = 64

// ErrTooManyTypes is returned by a gob Decoder whose stream defines more
// than MaxGobTypes types.
var ErrTooManyTypes = errors.New("codec: gob stream defines too many types")

type gobCodec struct{}

func (gobCodec) Name() string                   { return "gob" }
func (gobCodec) NewEncoder(w io.Writer) Encoder { return &gobEncoder{w: w} }

// gobEncoder encodes one gob stream. Control messages are encoded by
// encodeOwnControl, to the very bytes encoding/gob writes for them (its
// type definitions first, once), without encoding/gob's cost of sending
// its definitions anew for every stream; any other value goes to an
// encoding/gob Encoder, which is first told of the definitions already
// sent.
type gobEncoder struct {
	w    io.Writer
	sent bool         // the control message's definitions are sent
	enc  *gob.Encoder // for other values; nil until one comes
	out  switchWriter
	buf  []byte
}

func (e *gobEncoder) Encode(v any) error {
	if c, ok := v.(*wire.Control); ok && c != nil && e.enc == nil {
		own := ownControlStream()
		b := e.buf[:0]
		var pooled *[]byte
		if ownControlSize(c)+len(own.defs) > maxKeptMessage {
			// A large message (a full view) is encoded in a pooled
			// buffer: a link keeps only a small one of its own.
			pooled = encodeBuffers.Get().(*[]byte)
			b = (*pooled)[:0]
		}
		if !e.sent {
			b = append(b, own.defs...)
		}
		b = encodeOwnControl(b, own.id, c)
		_, err := e.w.Write(b)
		switch {
		case pooled != nil:
			if cap(b) <= maxPooledEncoding {
				*pooled = b[:0]
				encodeBuffers.Put(pooled)
			}
		case cap(b) <= maxKeptMessage:
			e.buf = b
		}
		e.sent = e.sent || err == nil
		return err
	}
	if e.enc == nil {
		e.enc = gob.NewEncoder(&e.out)
		if e.sent {
			// The definitions went out: the new encoder must not send
			// them again, so it sends its own to nowhere first.
			e.out.w = io.Discard
			if err := e.enc.Encode(&wire.Control{}); err != nil {
				return err
			}
		}
		e.out.w = e.w
	}
	return e.enc.Encode(v)
}

// encodeBuffers holds the buffers large control messages are encoded in,
// shared by every stream; one larger than maxPooledEncoding is not kept.
var encodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

const maxPooledEncoding = 256 << 10

// switchWriter writes to w, which may change.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }
func (gobCodec) NewDecoder(r io.Reader) Decoder {
	br, ok := r.(io.ByteReader)
	if !ok {
		b := bufio.NewReader(r)
		r, br = b, b
	}
	d := &gobDecoder{src: replayReader{r: r, br: br}}
	d.inPlace, _ = r.(inPlaceReader)
	return d
}

// inPlaceReader is a source that lends its unread bytes (as the core's
// frame reader, wire.ChunkReader, does): control messages are then
// decoded where they lie instead of copied out first.
type inPlaceReader interface {
	Bytes() []byte
	Discard(n int)
}

// gobDecoder decodes one gob stream. It reads the type definitions the
// stream starts with itself; when they are byte for byte the ones this
// build's own encoder sends for peerkit's control message, the stream's
// control messages are decoded by controlDecoder, which knows that
// message's layout, instead of by encoding/gob, which would compile the
// definitions again for every stream (most of what a new link's setup
// cost). Any other stream, and any message controlDecoder does not
// recognise as a plain encoding of the message, goes to encoding/gob.
type gobDecoder struct {
	src     replayReader  // the stream
	inPlace inPlaceReader // the stream's bytes in place, if it lends them
	lim     gobTypeLimiter
	dec     *gob.Decoder // nil until the stream needs it
	started bool
	fast    bool   // the stream defines exactly this build's control message types
	defs    string // on the fast path, the definitions read (this build's own)
	msg     []byte // the message controlDecoder decodes; reused
}

func (d *gobDecoder) Decode(v any) error {
	if !d.started {
		d.started = true
		d.start()
	}
	if d.fast {
		c, ok := v.(*wire.Control)
		if ok && c != nil {
			return d.decodeControl(c)
		}
		d.fallback(nil)
	}
	return d.dec.Decode(v)
}

// start reads the type definitions the stream begins with and its first
// value message, and picks how to decode.
func (d *gobDecoder) start() {
	defs, first, defined, ok := readDefinitions(&d.src, d.inPlace)
	own := ownControlStream()
	if ok && string(defs) == own.defs {
		d.fast, d.defs, d.lim.defined = true, own.defs, defined
		d.src.pre = first
		return
	}
	d.src.pre = append(defs, first...)
	d.lim = gobTypeLimiter{r: &d.src, br: &d.src}
	d.dec = gob.NewDecoder(&d.lim)
}

// decodeControl decodes the next message into c, by controlDecoder if it
// can, else (for good) by encoding/gob.
func (d *gobDecoder) decodeControl(c *wire.Control) error {
	if d.inPlace != nil && len(d.src.pre) == 0 {
		if msg, ok := wholeMessage(d.inPlace.Bytes()); ok {
			d.inPlace.Discard(len(msg))
			if decodeOwnControl(msg, c) {
				return nil
			}
			d.fallback(bytes.Clone(msg))
			return d.dec.Decode(c)
		}
	}
	msg, err := readGobMessage(&d.src, maxControlMessage, d.msg[:0])
	if cap(msg) <= maxKeptMessage {
		d.msg = msg
	}
	if err != nil {
		if len(msg) == 0 && err == io.EOF {
			return io.EOF
		}
		d.fallback(msg)
		return d.dec.Decode(c)
	}
	if decodeOwnControl(msg, c) {
		return nil
	}
	d.fallback(msg)
	return d.dec.Decode(c)
}

// fallback hands the stream to encoding/gob: the definitions, then msg
// (a message read and not decoded), then the rest.
func (d *gobDecoder) fallback(msg []byte) {
	d.fast = false
	d.src.pre = append(append([]byte(d.defs), msg...), d.src.pre...)
	d.lim = gobTypeLimiter{r: &d.src, br: &d.src}
	d.dec = gob.NewDecoder(&d.lim)
}

// wholeMessage returns the gob message b starts with, if all of it is in b.
func wholeMessage(b []byte) ([]byte, bool) {
	r := gobBytes{b: b}
	n, ok := r.uint()
	if !ok || n == 0 || n > uint64(r.left()) {
		return nil, false
	}
	return b[:len(b)-r.left()+int(n)], true
}

// The largest control message read whole for controlDecoder (the core
// bounds control frames more tightly), and the largest buffer kept for
// the next one.
const (
	maxControlMessage = 4 << 20
	maxKeptMessage    = 512
)

// maxDefinitionBytes bounds the type definitions read before a stream's
// first value; a stream with more goes to encoding/gob as it is.
const maxDefinitionBytes = 16 << 10

// readDefinitions reads the messages at the start of a gob stream up to
// its first value message: the type definitions' bytes, that value
// message's, and the number of definitions. ok is false (the bytes read
// are then in prefix and first, for a decoder to report on) if the
// stream does not start that way within the bounds.
//
// If in is not nil and lends a whole value message as the next bytes,
// that message is left unread, to be decoded where it lies, and first is
// empty.
func readDefinitions(r *replayReader, in inPlaceReader) (prefix, first []byte, defined int, ok bool) {
	var msg []byte
	for {
		if in != nil && len(r.pre) == 0 {
			if next, whole := wholeMessage(in.Bytes()); whole {
				if id, known := gobMessageType(next); known && id >= 0 {
					return prefix, nil, defined, true
				}
			}
		}
		var err error
		msg, err = readGobMessage(r, maxControlMessage, msg[:0])
		if err != nil || len(msg) == 0 {
			return prefix, msg, defined, false
		}
		id, ok := gobMessageType(msg)
		if !ok {
			return prefix, msg, defined, false
		}
		if id >= 0 {
			return prefix, msg, defined, true
		}
		if defined++; defined > MaxGobTypes || len(prefix)+len(msg) > maxDefinitionBytes {
			return prefix, msg, defined, false
		}
		prefix = append(prefix, msg...)
	}
}

// readGobMessage appends one gob message (its length, then its body) to
// buf, if its whole is at most limit bytes; else, or on a read error, it
// returns what it read with an error. The buffer grows with the bytes
// that arrive, not by what the length claims.
func readGobMessage(r *replayReader, limit int, buf []byte) ([]byte, error) {
	n, buf, err := readGobUint(r, buf)
	if err != nil {
		return buf, err
	}
	if n == 0 || n > uint64(limit-len(buf)) {
		return buf, errors.New("codec: gob message out of bounds")
	}
	for left := int(n); left > 0; {
		k := min(left, 64<<10)
		start := len(buf)
		buf = slices.Grow(buf, k)[:start+k]
		got, err := io.ReadFull(r, buf[start:])
		buf = buf[:start+got]
		if err != nil {
			return buf, err
		}
		left -= k
	}
	return buf, nil
}

// readGobUint reads a gob unsigned integer, appending its bytes to buf.
func readGobUint(r *replayReader, buf []byte) (uint64, []byte, error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, buf, err
	}
	buf = append(buf, b)
	if b < 0x80 {
		return uint64(b), buf, nil
	}
	n := int(-int8(b))
	if n <= 0 || n > 8 {
		return 0, buf, errors.New("codec: malformed gob integer")
	}
	var x uint64
	for range n {
		if b, err = r.ReadByte(); err != nil {
			return 0, buf, err
		}
		buf = append(buf, b)
		x = x<<8 | uint64(b)
	}
	return x, buf, nil
}

// gobMessageType returns the type id a gob message (its length, then its
// body) starts its body with: negative for a type definition.
func gobMessageType(msg []byte) (int64, bool) {
	d := gobBytes{b: msg}
	if _, ok := d.uint(); !ok { // the length
		return 0, false
	}
	u, ok := d.uint()
	if !ok {
		return 0, false
	}
	if u&1 != 0 {
		return ^int64(u >> 1), true
	}
	return int64(u >> 1), true
}

// replayReader reads pre, then r.
type replayReader struct {
	pre []byte
	r   io.Reader
	br  io.ByteReader
}

func (p *replayReader) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.consume(n)
		return n, nil
	}
	return p.r.Read(b)
}

func (p *replayReader) ReadByte() (byte, error) {
	if len(p.pre) > 0 {
		b := p.pre[0]
		p.consume(1)
		return b, nil
	}
	return p.br.ReadByte()
}

// consume drops n bytes of pre, and pre itself once it is read.
func (p *replayReader) consume(n int) {
	if p.pre = p.pre[n:]; len(p.pre) == 0 {
		p.pre = nil
	}
}

// gobTypeLimiter passes a gob stream through and counts its type
// definitions: messages (a length, then the body) whose body starts with a
// negative type id. It follows the framing byte by byte, however gob
// splits its reads.
type gobTypeLimiter struct {
	r  io.Reader
	br io.ByteReader

	state   uint8  // 0: message length; 1: type id; 2: rest of the body
	n       int    // bytes of the current integer still to come (0: first byte next)
	acc     uint64 // the integer being read
	left    uint64 // body bytes left in the message
	defined int    // type definitions seen
	err     error
}

func (g *gobTypeLimiter) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	for _, b := range p[:n] {
		g.feed(b)
	}
	if g.err != nil {
		return 0, g.err
	}
	return n, err
}

func (g *gobTypeLimiter) ReadByte() (byte, error) {
	if g.err != nil {
		return 0, g.err
	}
	b, err := g.br.ReadByte()
	if err != nil {
		return b, err
	}
	if g.feed(b); g.err != nil {
		return 0, g.err
	}
	return b, nil
}

// feed advances the framing by one byte. gob integers are one byte below
// 128, else a byte holding minus their length followed by that many
// big-endian bytes; a signed integer is negative when its low bit is set.
func (g *gobTypeLimiter) feed(b byte) {
	if g.state == 2 {
		if g.left--; g.left == 0 {
			g.state = 0
		}
		return
	}
	if g.state == 1 {
		g.left--
	}
	switch {
	case g.n == 0 && b < 0x80:
		g.acc = uint64(b)
	case g.n == 0:
		g.n = int(-int8(b))
		g.acc = 0
		if g.n <= 0 || g.n > 8 {
			g.err = errors.New("codec: malformed gob stream")
		}
		return
	default:
		g.acc = g.acc<<8 | uint64(b)
		if g.n--; g.n > 0 {
			return
		}
	}
	if g.state == 0 { // a message length
		g.left = g.acc
		if g.left > 0 {
			g.state = 1
		}
		return
	}
	if g.acc&1 != 0 { // a negative type id: a type definition
		if g.defined++; g.defined > MaxGobTypes {
			g.err = ErrTooManyTypes
			return
		}
	}
	g.state = 2
	if g.left == 0 {
		g.state = 0
	}
}
