package codec

import (
	"bytes"
	"encoding/gob"
	"math/bits"
	"slices"
	"sync"

	"github.com/peerkit/peerkit/internal/wire"
)

// The gob encoding of peerkit's control message, as this build's encoder
// writes it, decoded without encoding/gob: see gobDecoder. A value of
// wire.Control is a struct message: its type id, then for each field that
// is not zero the delta of its field number and its value, then 0.
// Peers is a count and that many Peer structs, each encoded the same way
// (Addr a length and bytes, Instance an unsigned integer); MetaSet is 1;
// Meta a length and bytes.

// ownStream is what this build's gob encoder sends first for a control
// message: its type definitions, and the type id of its value messages.
type ownStream struct {
	defs string
	id   int64
}

var ownControlStream = sync.OnceValue(func() ownStream {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&wire.Control{}); err != nil {
		return ownStream{} // cannot happen; no stream matches then
	}
	r := replayReader{pre: buf.Bytes()}
	defs, first, _, ok := readDefinitions(&r, nil)
	if !ok {
		return ownStream{}
	}
	id, _ := gobMessageType(first)
	return ownStream{defs: string(defs), id: id}
})

// decodeOwnControl decodes msg (a gob message: length, then body) into c,
// which must be zero, if msg is a control message value encoded plainly,
// as encoding/gob encodes one. It reports false, leaving c as it was, if
// msg is anything else: encoding/gob then decides what it is.
func decodeOwnControl(msg []byte, c *wire.Control) bool {
	d := gobBytes{b: msg}
	if _, ok := d.uint(); !ok { // the length, checked by the reader
		return false
	}
	if id, ok := gobMessageType(msg); !ok || id != ownControlStream().id || id < 0 {
		return false
	}
	d.uint() // the type id
	var out wire.Control
	for field := -1; ; {
		ok, end := d.field(&field, 3)
		if !ok {
			return false
		}
		if end {
			break
		}
		switch field {
		case 0:
			n, ok := d.uint()
			if !ok || n == 0 || n > uint64(d.left()) { // each peer takes a byte at least
				return false
			}
			out.Peers = make([]wire.Peer, n)
			for i := range out.Peers {
				if !d.peer(&out.Peers[i]) {
					return false
				}
			}
		case 1:
			v, ok := d.uint()
			if !ok || v != 1 {
				return false
			}
			out.MetaSet = true
		case 2:
			b, ok := d.bytes()
			if !ok || len(b) == 0 {
				return false
			}
			out.Meta = append([]byte(nil), b...)
		default:
			return false
		}
	}
	if d.left() != 0 {
		return false
	}
	*c = out
	return true
}

// encodeOwnControl appends c's value message, as encoding/gob writes it
// with type id id, to b.
func encodeOwnControl(b []byte, id int64, c *wire.Control) []byte {
	b = slices.Grow(b, ownControlSize(c)) // one allocation, not one per doubling
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, 0) // room for the length
	body := len(b)
	b = appendGobUint(b, uint64(id)<<1)
	field := -1
	next := func(f int) {
		b = appendGobUint(b, uint64(f-field))
		field = f
	}
	if len(c.Peers) > 0 {
		next(0)
		b = appendGobUint(b, uint64(len(c.Peers)))
		for _, p := range c.Peers {
			pf := -1
			if p.Addr != "" {
				b = appendGobUint(b, uint64(0-pf))
				b = appendGobUint(b, uint64(len(p.Addr)))
				b = append(b, p.Addr...)
				pf = 0
			}
			if p.Instance != 0 {
				b = appendGobUint(b, uint64(1-pf))
				b = appendGobUint(b, p.Instance)
			}
			b = append(b, 0)
		}
	}
	if c.MetaSet {
		next(1)
		b = append(b, 1)
	}
	if len(c.Meta) > 0 {
		next(2)
		b = appendGobUint(b, uint64(len(c.Meta)))
		b = append(b, c.Meta...)
	}
	b = append(b, 0)
	// The length goes just before the body: move the body up to it.
	var l [9]byte
	n := len(appendGobUint(l[:0], uint64(len(b)-body)))
	appendGobUint(b[body-n:body-n], uint64(len(b)-body))
	return append(b[:start], b[body-n:]...)
}

// ownControlSize bounds the bytes encodeOwnControl appends for c.
func ownControlSize(c *wire.Control) int {
	n := 9 + 9 + 3*9 + 1 // length, type id, three fields and their deltas or counts, the end
	for _, p := range c.Peers {
		n += 1 + gobUintSize(uint64(len(p.Addr))) + len(p.Addr) + 1 + gobUintSize(p.Instance) + 1
	}
	return n + len(c.Meta)
}

// gobUintSize is how many bytes gob needs for x.
func gobUintSize(x uint64) int {
	if x < 0x80 {
		return 1
	}
	return 1 + (bits.Len64(x)+7)/8
}

// appendGobUint appends x as gob encodes an unsigned integer.
func appendGobUint(b []byte, x uint64) []byte {
	if x < 0x80 {
		return append(b, byte(x))
	}
	n := (bits.Len64(x) + 7) / 8
	b = append(b, byte(-int8(n)))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(x>>(8*i)))
	}
	return b
}

// Peer addresses decoded are interned: a cluster's links carry the same
// few addresses over and over, so each is one string in memory, not one
// per peer list. Only addresses of a valid length are (longer ones are
// refused by the core anyway), and the table is bounded: when it is full
// it starts afresh, so that addresses no longer in use, or junk a peer
// sent, are not held for ever.
var interned struct {
	mu sync.Mutex
	m  map[string]string
}

const maxInterned = 1 << 14 // at most 4 MiB of addresses

func intern(b []byte) string {
	if len(b) > wire.MaxAddr {
		return string(b)
	}
	interned.mu.Lock()
	defer interned.mu.Unlock()
	if s, ok := interned.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if interned.m == nil || len(interned.m) >= maxInterned {
		interned.m = make(map[string]string)
	}
	interned.m[s] = s
	return s
}

// gobBytes reads gob's integers and byte strings from b.
type gobBytes struct{ b []byte }

func (d *gobBytes) left() int { return len(d.b) }

// uint reads an unsigned integer: a byte below 128, else a byte holding
// minus the length of the big-endian bytes that follow.
func (d *gobBytes) uint() (uint64, bool) {
	if len(d.b) == 0 {
		return 0, false
	}
	b := d.b[0]
	if b < 0x80 {
		d.b = d.b[1:]
		return uint64(b), true
	}
	n := int(-int8(b))
	if n <= 0 || n > 8 || len(d.b) < 1+n {
		return 0, false
	}
	var x uint64
	for _, c := range d.b[1 : 1+n] {
		x = x<<8 | uint64(c)
	}
	d.b = d.b[1+n:]
	return x, true
}

// bytes reads a length and that many bytes.
func (d *gobBytes) bytes() ([]byte, bool) {
	n, ok := d.uint()
	if !ok || n > uint64(len(d.b)) {
		return nil, false
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b, true
}

// field reads the next field number of a struct of n fields into *field
// (the last one read, -1 at first): end is the struct's end, and ok is
// false for a number out of range or bytes that run out.
func (d *gobBytes) field(field *int, n int) (ok, end bool) {
	delta, ok := d.uint()
	switch {
	case !ok:
		return false, false
	case delta == 0:
		return true, true
	case delta > uint64(n-1-*field):
		return false, false
	}
	*field += int(delta)
	return true, false
}

// peer reads one Peer struct.
func (d *gobBytes) peer(p *wire.Peer) bool {
	for field := -1; ; {
		ok, end := d.field(&field, 2)
		if !ok || end {
			return ok
		}
		switch field {
		case 0:
			b, ok := d.bytes()
			if !ok || len(b) == 0 {
				return false
			}
			p.Addr = intern(b)
		case 1:
			v, ok := d.uint()
			if !ok || v == 0 {
				return false
			}
			p.Instance = v
		default:
			return false
		}
	}
}
