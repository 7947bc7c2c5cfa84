package codec

import (
	"bufio"
	"encoding/gob"
	"errors"
	"io"
	"sync"
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
func (gobCodec) NewEncoder(w io.Writer) Encoder { return gob.NewEncoder(w) }
func (gobCodec) NewDecoder(r io.Reader) Decoder {
	br, ok := r.(io.ByteReader)
	if !ok {
		b := bufio.NewReader(r)
		r, br = b, b
	}
	return &gobDecoder{src: replayReader{r: r, br: br}}
}

// gobDecoder decodes one gob stream. Every stream of peerkit control
// messages starts with the same type definitions (the same bytes from
// every peer of one build), and compiling them is most of what a new
// link's first decode costs. So a decoder whose stream has ended cleanly
// is kept, by the bytes of the definitions it compiled, for the next
// stream that starts with the same bytes: that stream's definitions are
// read and compared, not decoded again. A decoder is in the same state
// after the same definitions, whichever peer sent them.
type gobDecoder struct {
	src     replayReader // the stream
	lim     gobTypeLimiter
	in      *gobInput // what dec reads: lim
	dec     *gob.Decoder
	sig     string // the definitions dec was primed with; "" if not kept
	defined int    // how many
	clean   bool   // every Decode so far succeeded
	done    bool   // released
}

// Bounds of the primed decoders kept: the streams' definitions they are
// kept by, and the bytes of each stream's definitions. Streams beyond
// them decode as usual, with a decoder of their own.
const (
	maxPrimedKinds = 16
	maxPrimedBytes = 16 << 10
)

// primedDecoders holds decoders by their definitions' bytes.
var primedDecoders struct {
	mu    sync.Mutex
	pools map[string]*sync.Pool // of *primedDecoder
}

type primedDecoder struct {
	dec *gob.Decoder
	in  *gobInput
}

func primedPool(sig string, add bool) *sync.Pool {
	primedDecoders.mu.Lock()
	defer primedDecoders.mu.Unlock()
	p := primedDecoders.pools[sig]
	if p == nil && add && len(primedDecoders.pools) < maxPrimedKinds {
		if primedDecoders.pools == nil {
			primedDecoders.pools = make(map[string]*sync.Pool)
		}
		p = new(sync.Pool)
		primedDecoders.pools[sig] = p
	}
	return p
}

// gobInput is what a gob.Decoder reads: the limiter of the stream it is
// decoding now, which changes when the decoder is reused.
type gobInput struct{ lim *gobTypeLimiter }

func (g *gobInput) Read(p []byte) (int, error) { return g.lim.Read(p) }
func (g *gobInput) ReadByte() (byte, error)    { return g.lim.ReadByte() }

var errReleased = errors.New("codec: gob decoder used after Release")

func (d *gobDecoder) Decode(v any) error {
	if d.done {
		return errReleased
	}
	if d.dec == nil {
		d.start()
	}
	err := d.dec.Decode(v)
	if err != nil {
		d.clean = false
	}
	return err
}

// start reads the type definitions the stream begins with and picks a
// decoder: a primed one for the same definitions, or a new one that reads
// them again.
func (d *gobDecoder) start() {
	prefix, first, defined, ok := readDefinitions(&d.src)
	d.clean = ok
	if ok {
		d.sig, d.defined = string(prefix), defined
		if p := primedPool(d.sig, false); p != nil {
			if pd, _ := p.Get().(*primedDecoder); pd != nil {
				d.dec, d.in = pd.dec, pd.in
				d.src.pre = first
				d.lim = gobTypeLimiter{r: &d.src, br: &d.src, defined: defined}
				d.in.lim = &d.lim
				return
			}
		}
	}
	d.src.pre = append(prefix, first...)
	d.lim = gobTypeLimiter{r: &d.src, br: &d.src}
	d.in = &gobInput{lim: &d.lim}
	d.dec = gob.NewDecoder(d.in)
}

// Release ends the stream. The decoder is kept for a stream with the same
// definitions if this one ended cleanly: every Decode succeeded, no
// definition came after the first value, and no message is half read.
func (d *gobDecoder) Release() {
	if d.done {
		return
	}
	d.done = true
	if d.dec == nil || !d.clean || d.sig == "" || d.lim.defined != d.defined ||
		d.lim.state != 0 || d.lim.n != 0 || len(d.src.pre) != 0 {
		return
	}
	if p := primedPool(d.sig, true); p != nil {
		d.in.lim = nil
		p.Put(&primedDecoder{dec: d.dec, in: d.in})
	}
	d.dec, d.in = nil, nil
}

// readDefinitions reads the messages at the start of a gob stream up to
// its first value message: the type definitions' bytes, that value
// message's, and the number of definitions. ok is false (the bytes read
// are then in prefix and first, for a decoder to report on) if the
// stream does not start that way within the bounds.
func readDefinitions(r *replayReader) (prefix, first []byte, defined int, ok bool) {
	var msg []byte
	for {
		var err error
		msg, err = readGobMessage(r, maxPrimedBytes-len(prefix), msg[:0])
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
		if defined++; defined > MaxGobTypes {
			return prefix, msg, defined, false
		}
		prefix = append(prefix, msg...)
	}
}

// readGobMessage appends one gob message (its length, then its body) to
// buf, if its whole is at most limit bytes; else, or on a read error, it
// returns what it read with an error.
func readGobMessage(r *replayReader, limit int, buf []byte) ([]byte, error) {
	n, buf, err := readGobUint(r, buf)
	if err != nil {
		return buf, err
	}
	if n == 0 || n > uint64(limit-len(buf)) {
		return buf, errors.New("codec: gob message out of bounds")
	}
	start := len(buf)
	buf = append(buf, make([]byte, n)...)
	k, err := io.ReadFull(r, buf[start:])
	return buf[:start+k], err
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
	i := 1 // past the length
	if msg[0] >= 0x80 {
		i += int(-int8(msg[0]))
	}
	if i >= len(msg) {
		return 0, false
	}
	var u uint64
	if b := msg[i]; b < 0x80 {
		u = uint64(b)
	} else {
		n := int(-int8(b))
		if n <= 0 || n > 8 || i+1+n > len(msg) {
			return 0, false
		}
		for _, c := range msg[i+1 : i+1+n] {
			u = u<<8 | uint64(c)
		}
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
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.r.Read(b)
}

func (p *replayReader) ReadByte() (byte, error) {
	if len(p.pre) > 0 {
		b := p.pre[0]
		p.pre = p.pre[1:]
		return b, nil
	}
	return p.br.ReadByte()
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
