package codec

import (
	"bufio"
	"encoding/gob"
	"errors"
	"io"
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
	return gob.NewDecoder(&gobTypeLimiter{r: r, br: br})
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
