// Package codectest checks that a codec.Codec works the way the peerkit
// core uses it: one encoder and one decoder per link, each Encode call's
// output sent as one frame, and each frame handed to the decoder on its
// own. Third-party codecs should pass it:
//
//	func TestMyCodec(t *testing.T) { codectest.Run(t, mycodec.Codec) }
package codectest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/internal/wire"
)

// Run runs the conformance cases against c as subtests.
func Run(t *testing.T, c codec.Codec) {
	t.Run("Name", func(t *testing.T) { testName(t, c) })
	t.Run("RoundTripPerFrame", func(t *testing.T) { testRoundTrip(t, c) })
	t.Run("StreamsAreIndependent", func(t *testing.T) { testIndependent(t, c) })
	t.Run("TrailingBytesFail", func(t *testing.T) { testTrailing(t, c) })
	t.Run("TruncatedFrameFails", func(t *testing.T) { testTruncated(t, c) })
	t.Run("GarbageNeverPanics", func(t *testing.T) { testGarbage(t, c) })
}

// Samples returns the control messages Run sends; fuzzers use them as
// seeds.
func Samples() []*wire.Control {
	many := make([]wire.Peer, 500)
	for i := range many {
		many[i] = wire.Peer{Addr: fmt.Sprintf("10.0.%d.%d:7946", i/256, i%256), Instance: uint64(i)*0x9e3779b97f4a7c15 + 1}
	}
	return []*wire.Control{
		{},
		{Peers: []wire.Peer{{Addr: "127.0.0.1:7000", Instance: 1}}},
		{Peers: []wire.Peer{{Addr: "[::1]:1", Instance: 1<<64 - 1}, {Addr: "nodé-ü:9", Instance: 2}}},
		{MetaSet: true, Meta: []byte("zone=eu-west-1")},
		{MetaSet: true, Meta: []byte{0, 1, 2, 255}},
		{Peers: many},
		{MetaSet: true},
	}
}

func testName(t *testing.T, c codec.Codec) {
	n := c.Name()
	if n == "" || len(n) > wire.MaxCodecName {
		t.Fatalf("Name() = %q: must be 1..%d bytes", n, wire.MaxCodecName)
	}
	for _, r := range n {
		if r < 0x21 || r > 0x7e {
			t.Fatalf("Name() = %q: must be printable ASCII without spaces", n)
		}
	}
}

// encodeFrames encodes each value with one encoder, one frame per Encode.
func encodeFrames(t *testing.T, c codec.Codec, vs []*wire.Control) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	enc := c.NewEncoder(&buf)
	frames := make([][]byte, len(vs))
	for i, v := range vs {
		buf.Reset()
		if err := enc.Encode(v); err != nil {
			t.Fatalf("Encode(#%d): %v", i, err)
		}
		frames[i] = bytes.Clone(buf.Bytes())
	}
	return frames
}

// normalize makes nil and empty slices compare equal: codecs may not keep
// the difference, and the core does not rely on it.
func normalize(c *wire.Control) wire.Control {
	out := *c
	if len(out.Peers) == 0 {
		out.Peers = nil
	}
	if len(out.Meta) == 0 {
		out.Meta = nil
	}
	return out
}

func testRoundTrip(t *testing.T, c codec.Codec) {
	in := Samples()
	// Twice over one stream: type information sent once must still let
	// later frames decode.
	in = append(in, Samples()...)
	frames := encodeFrames(t, c, in)
	var chunk wire.ChunkReader
	dec := c.NewDecoder(&chunk)
	for i, f := range frames {
		var got wire.Control
		if err := wire.DecodeControl(dec, &chunk, f, &got); err != nil {
			t.Fatalf("Decode(frame %d): %v (one Encode must be one frame, decoded on its own)", i, err)
		}
		if g, w := normalize(&got), normalize(in[i]); !reflect.DeepEqual(g, w) {
			t.Fatalf("frame %d: decoded %+v, want %+v", i, g, w)
		}
	}
}

func testIndependent(t *testing.T, c codec.Codec) {
	// Two links: frames of one stream decode on a decoder of that stream
	// only, and each stream starts from scratch.
	a := encodeFrames(t, c, Samples()[:3])
	b := encodeFrames(t, c, Samples()[3:5])
	for _, frames := range [][][]byte{a, b} {
		var chunk wire.ChunkReader
		dec := c.NewDecoder(&chunk)
		for i, f := range frames {
			var got wire.Control
			if err := wire.DecodeControl(dec, &chunk, f, &got); err != nil {
				t.Fatalf("fresh stream, frame %d: %v", i, err)
			}
		}
	}
}

func testTrailing(t *testing.T, c codec.Codec) {
	// A stray byte after a message in its frame is refused with that
	// frame, not carried into the next one.
	frames := encodeFrames(t, c, Samples()[1:2])
	var chunk wire.ChunkReader
	dec := c.NewDecoder(&chunk)
	var got wire.Control
	if err := wire.DecodeControl(dec, &chunk, append(frames[0], 'X'), &got); err == nil {
		t.Fatal("a frame with a stray byte after its message decoded without error")
	}
}

func testTruncated(t *testing.T, c codec.Codec) {
	frames := encodeFrames(t, c, Samples()[1:3])
	f := frames[0]
	for _, cut := range []int{0, 1, len(f) / 2, len(f) - 1} {
		var chunk wire.ChunkReader
		dec := c.NewDecoder(&chunk)
		chunk.Reset(f[:cut])
		var got wire.Control
		if err := dec.Decode(&got); err == nil && cut < len(f)-1 {
			// The last byte may be a delimiter some codecs do not need.
			t.Fatalf("Decode of a frame cut to %d of %d bytes succeeded", cut, len(f))
		}
	}
}

func testGarbage(t *testing.T, c codec.Codec) {
	r := rand.New(rand.NewPCG(1, 2))
	valid := encodeFrames(t, c, Samples())
	for i := range 2000 {
		var f []byte
		switch i % 3 {
		case 0: // random bytes
			f = make([]byte, r.IntN(256))
			for j := range f {
				f[j] = byte(r.Uint32())
			}
		case 1: // a valid frame with bytes flipped
			f = bytes.Clone(valid[r.IntN(len(valid))])
			for range 1 + r.IntN(4) {
				if len(f) > 0 {
					f[r.IntN(len(f))] ^= byte(1 + r.IntN(255))
				}
			}
		default: // valid prefix, garbage tail
			f = append(bytes.Clone(valid[r.IntN(len(valid))]), []byte(strings.Repeat("\xff", r.IntN(64)))...)
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("Decode panicked on input %x: %v", f, p)
				}
			}()
			var chunk wire.ChunkReader
			dec := c.NewDecoder(&chunk)
			chunk.Reset(f)
			var got wire.Control
			_ = dec.Decode(&got) // an error is fine; a panic is not
		}()
	}
}
