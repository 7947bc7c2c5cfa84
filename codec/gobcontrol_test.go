package codec

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
	"unsafe"

	"github.com/peerkit/peerkit/internal/wire"
)

// decodeAll decodes a gob stream's control messages, each Decode fed its
// own chunk of bytes as the core feeds frames, with dec; it returns the
// values up to the first error, and that error.
func decodeAll(dec Decoder, chunks *chunks, n int) ([]wire.Control, error) {
	var out []wire.Control
	for range n {
		var c wire.Control
		if err := dec.Decode(&c); err != nil {
			return out, err
		}
		out = append(out, c)
		chunks.next()
	}
	return out, nil
}

// chunks serves one frame's bytes at a time, ending each with io.EOF.
type chunks struct {
	frames [][]byte
	cur    []byte
}

func (c *chunks) next() {
	c.cur = nil
	if len(c.frames) > 0 {
		c.cur, c.frames = c.frames[0], c.frames[1:]
	}
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.cur) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

func (c *chunks) ReadByte() (byte, error) {
	if len(c.cur) == 0 {
		return 0, io.EOF
	}
	b := c.cur[0]
	c.cur = c.cur[1:]
	return b, nil
}

// lending is chunks that lends its unread bytes, as wire.ChunkReader does.
type lending struct{ *chunks }

func (l lending) Bytes() []byte { return l.cur }
func (l lending) Discard(n int) { l.cur = l.cur[n:] }

// encodeFrames encodes cs with one gob encoder, one chunk per Encode.
func encodeFrames(t testing.TB, cs []wire.Control) [][]byte {
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	var out [][]byte
	for i := range cs {
		buf.Reset()
		if err := enc.Encode(&cs[i]); err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(buf.Bytes()))
	}
	return out
}

func randomControl(r *rand.Rand) wire.Control {
	var c wire.Control
	if r.IntN(3) > 0 {
		c.Peers = make([]wire.Peer, r.IntN(40)+1)
		for i := range c.Peers {
			if r.IntN(5) > 0 {
				c.Peers[i].Addr = fmt.Sprintf("node%d.example:%d", r.IntN(1000), r.IntN(65536))
			}
			if r.IntN(5) > 0 {
				c.Peers[i].Instance = r.Uint64() >> r.IntN(64)
			}
		}
	}
	if r.IntN(2) == 0 {
		c.MetaSet = true
		if r.IntN(3) > 0 {
			c.Meta = make([]byte, r.IntN(300)+1)
			for i := range c.Meta {
				c.Meta[i] = byte(r.Uint32())
			}
		}
	}
	return c
}

// The gob codec decodes this build's own control streams without
// encoding/gob, to the values encoding/gob decodes them to.
func TestGobControlStreamsDecodeAsGobDoes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		cs := make([]wire.Control, r.IntN(6)+1)
		for i := range cs {
			cs[i] = randomControl(r)
		}
		frames := encodeFrames(t, cs)

		got := &chunks{frames: frames}
		got.next()
		var src io.Reader = got
		if round%2 == 1 {
			src = lending{got} // decoded in place
		}
		dec := Gob.NewDecoder(src)
		have, err := decodeAll(dec, got, len(cs))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if !dec.(*gobDecoder).fast {
			t.Fatalf("round %d: this build's own stream went to encoding/gob", round)
		}
		ref := &chunks{frames: frames}
		ref.next()
		want, err := decodeAll(gob.NewDecoder(ref), ref, len(cs))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(have, want) {
			t.Fatalf("round %d: decoded\n%+v\nencoding/gob decodes\n%+v", round, have, want)
		}
	}
}

// A value that encoding/gob accepts but that is not encoded as this
// build's encoder does (a zero field sent, an empty list) is handed to
// encoding/gob, with the stream's definitions, and decodes as it does.
func TestGobControlUnusualEncodingsGoToGob(t *testing.T) {
	defs := []byte(ownControlStream().defs)
	id := ownControlStream().id
	value := func(body ...byte) []byte {
		b := append(encodeUint(nil, uint64(id)<<1), body...)
		return append(encodeUint(nil, uint64(len(b))), b...)
	}
	cases := map[string][]byte{
		"instance 0 sent":       value(1, 1, 1, 1, 'a', 1, 0, 0, 0),           // Peers [{a 0}] with Instance 0 explicit
		"empty peer list":       value(1, 0, 0),                               // Peers with count 0
		"MetaSet 0 sent":        value(2, 0, 0),                               // MetaSet false explicit
		"empty meta sent":       value(3, 0, 0),                               // Meta of length 0
		"fields then MetaSet 2": value(2, 2, 0),                               // a bool sent as 2
		"unknown field":         value(4, 1, 0),                               // no such field
		"peer list too long":    value(1, 0xfc, 0x7f, 0xff, 0xff, 0xff, 0, 0), // a huge count
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			frame := append(bytes.Clone(defs), v...)
			got := &chunks{frames: [][]byte{frame}}
			got.next()
			dec := Gob.NewDecoder(got)
			var have wire.Control
			herr := dec.Decode(&have)
			ref := &chunks{frames: [][]byte{frame}}
			ref.next()
			var want wire.Control
			werr := gob.NewDecoder(ref).Decode(&want)
			if (herr == nil) != (werr == nil) || !reflect.DeepEqual(have, want) {
				t.Fatalf("decoded %+v, %v; encoding/gob decodes %+v, %v", have, herr, want, werr)
			}
			if dec.(*gobDecoder).fast {
				t.Fatal("still on the fast path after an encoding it does not know")
			}
		})
	}
}

// A stream whose definitions differ from this build's (another type of
// the same shape) is decoded by encoding/gob.
func TestGobOtherDefinitionsGoToGob(t *testing.T) {
	type Peer struct {
		Addr     string
		Instance uint64
	}
	type Other struct {
		Peers   []Peer
		MetaSet bool
		Meta    []byte
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&Other{Peers: []Peer{{"a:1", 7}}, MetaSet: true}); err != nil {
		t.Fatal(err)
	}
	ch := &chunks{frames: [][]byte{buf.Bytes()}}
	ch.next()
	dec := Gob.NewDecoder(ch)
	var c wire.Control
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if dec.(*gobDecoder).fast {
		t.Fatal("a stream of other definitions took the fast path")
	}
	want := wire.Control{Peers: []wire.Peer{{Addr: "a:1", Instance: 7}}, MetaSet: true}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("decoded %+v, want %+v", c, want)
	}
}

func encodeUint(b []byte, x uint64) []byte {
	if x < 0x80 {
		return append(b, byte(x))
	}
	var be [8]byte
	n := 0
	for v := x; v > 0; v >>= 8 {
		n++
	}
	for i := range n {
		be[i] = byte(x >> (8 * (n - 1 - i)))
	}
	return append(append(b, byte(-int8(n))), be[:n]...)
}

// FuzzGobControlMatchesGob: after this build's definitions, any bytes
// decode to what encoding/gob decodes them to, or fail where it fails.
func FuzzGobControlMatchesGob(f *testing.F) {
	for _, c := range []wire.Control{{}, {Peers: []wire.Peer{{Addr: "a:1", Instance: 3}, {}}, MetaSet: true, Meta: []byte("m")}} {
		frame := encodeFrames(f, []wire.Control{c})[0] // a new encoder: definitions, then the value
		f.Add(frame[len(ownControlStream().defs):])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		frame := append([]byte(ownControlStream().defs), data...)
		got := &chunks{frames: [][]byte{frame}}
		got.next()
		var have wire.Control
		herr := Gob.NewDecoder(lending{got}).Decode(&have)
		ref := &chunks{frames: [][]byte{frame}}
		ref.next()
		var want wire.Control
		werr := gob.NewDecoder(ref).Decode(&want)
		if (herr == nil) != (werr == nil) {
			t.Fatalf("error %v; encoding/gob's %v", herr, werr)
		}
		if herr == nil && !reflect.DeepEqual(have, want) {
			t.Fatalf("decoded %+v; encoding/gob decodes %+v", have, want)
		}
		if herr == nil && len(got.cur) != len(ref.cur) {
			t.Fatalf("left %d bytes; encoding/gob leaves %d", len(got.cur), len(ref.cur))
		}
	})
}

// The gob codec's encoder writes, for control messages, the very bytes
// encoding/gob's does, stream for stream; and a value of another type
// after them does not make it send the definitions again.
func TestGobControlEncodesAsGobDoes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 300 {
		cs := make([]wire.Control, r.IntN(5)+1)
		for i := range cs {
			cs[i] = randomControl(r)
		}
		if round == 0 {
			cs[0] = wire.Control{Peers: []wire.Peer{{Instance: 1 << 63}, {Addr: string(make([]byte, 300))}}, Meta: make([]byte, 70000)}
		}
		want := encodeFrames(t, cs)
		var buf bytes.Buffer
		enc := Gob.NewEncoder(&buf)
		for i := range cs {
			buf.Reset()
			if err := enc.Encode(&cs[i]); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want[i]) {
				t.Fatalf("round %d, message %d (%+v):\nwrote    % x\ngob says % x", round, i, cs[i], buf.Bytes(), want[i])
			}
		}
	}

	var buf bytes.Buffer
	enc := Gob.NewEncoder(&buf)
	for _, v := range []any{&wire.Control{MetaSet: true}, &struct{ X int }{7}, &wire.Control{Peers: []wire.Peer{{Addr: "a:1"}}}} {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	dec := gob.NewDecoder(&buf)
	var c1, c3 wire.Control
	var x struct{ X int }
	for _, v := range []any{&c1, &x, &c3} {
		if err := dec.Decode(v); err != nil {
			t.Fatalf("encoding/gob cannot decode the stream: %v", err)
		}
	}
	if !c1.MetaSet || x.X != 7 || len(c3.Peers) != 1 || c3.Peers[0].Addr != "a:1" {
		t.Fatalf("decoded %+v, %+v, %+v", c1, x, c3)
	}
}

// Interning keeps one string per address, takes no address longer than a
// valid one, and starts afresh when its table is full.
func TestInternBounds(t *testing.T) {
	a, b := intern([]byte("10.0.0.1:7946")), intern([]byte("10.0.0.1:7946"))
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatal("the same address decoded twice is two strings")
	}
	long := bytes.Repeat([]byte{'x'}, wire.MaxAddr+1)
	intern(long)
	interned.mu.Lock()
	_, kept := interned.m[string(long)]
	interned.mu.Unlock()
	if kept {
		t.Fatal("an address longer than any valid one was interned")
	}
	for i := range maxInterned + 10 {
		intern(fmt.Appendf(nil, "junk%d:1", i))
	}
	interned.mu.Lock()
	n := len(interned.m)
	interned.mu.Unlock()
	if n > maxInterned {
		t.Fatalf("the table holds %d addresses, bound %d", n, maxInterned)
	}
}

// A new stream's first value (a full view, on a link) is decoded where it
// lies when the source lends its bytes: it was copied out twice, once
// while the definitions before it were read and again to be decoded.
func TestGobFirstViewDecodedInPlace(t *testing.T) {
	c := wire.Control{Peers: make([]wire.Peer, 200)}
	for i := range c.Peers {
		c.Peers[i] = wire.Peer{Addr: fmt.Sprintf("node-%03d.peers.example:7946", i), Instance: uint64(i) + 1}
	}
	frame := encodeFrames(t, []wire.Control{c})[0]
	decode := func() {
		src := &chunks{frames: [][]byte{frame}}
		src.next()
		var got wire.Control
		if err := Gob.NewDecoder(lending{src}).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if len(got.Peers) != len(c.Peers) || got.Peers[199] != c.Peers[199] {
			t.Fatal("the view decoded wrong")
		}
	}
	decode() // the addresses are interned from now on
	const runs = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		decode()
	}
	runtime.ReadMemStats(&after)
	perDecode := int(after.TotalAlloc-before.TotalAlloc) / runs
	peers := len(c.Peers) * int(unsafe.Sizeof(wire.Peer{}))
	if limit := peers + 1024; perDecode > limit {
		t.Fatalf("decoding a %d-byte first view allocated %d bytes; the peer list is %d, the limit %d",
			len(frame), perDecode, peers, limit)
	}
}

// Encoding a full view takes a pooled buffer: a stream keeps only a
// small buffer of its own, and a large view no longer costs an
// allocation of its size every time.
func TestGobLargeViewEncodesInPooledBuffer(t *testing.T) {
	c := wire.Control{Peers: make([]wire.Peer, 200)}
	for i := range c.Peers {
		c.Peers[i] = wire.Peer{Addr: fmt.Sprintf("node-%03d.peers.example:7946", i), Instance: uint64(i) + 1}
	}
	enc := Gob.NewEncoder(io.Discard)
	if err := enc.Encode(&c); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := enc.Encode(&c); err != nil {
			t.Fatal(err)
		}
	})
	if allocs >= 0.5 && !raceEnabled { // the race detector makes sync.Pool drop some
		t.Fatalf("%v allocations per Encode of a 200-peer view, want none", allocs)
	}
	if kept := cap(enc.(*gobEncoder).buf); kept > maxKeptMessage {
		t.Fatalf("the stream keeps a %d-byte buffer", kept)
	}
}
