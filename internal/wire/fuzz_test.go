package wire_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/internal/wire"
)

// Fuzz targets for everything that parses bytes from a peer. Seed corpora
// are in testdata/fuzz/FuzzX; the golden vectors are added as seeds too.
// Run one briefly with
//
//	go test -run='^$' -fuzz=FuzzReadFrames -fuzztime=10s ./internal/wire

// fuzzLimit is the data and control frame limit in the frame targets:
// small, so that the limit path is reached often.
const fuzzLimit = 1 << 16

// FuzzReadFrames reads frames as a link's reader does: header first,
// checked against the limits before the body is allocated.
func FuzzReadFrames(f *testing.F) {
	f.Add(readHex(f, "frames.hex"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, wire.FrameData, 1, 2, 3})
	f.Add([]byte{0, 0, 0, 1, wire.FrameHeartbeat, 0})
	f.Add([]byte{0, 0, 0, 0, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		consumed := 0
		for {
			typ, n, err := wire.ReadFrameHeader(br, fuzzLimit, fuzzLimit/2)
			if err != nil {
				if errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrUnknownFrame) {
					if consumed+wire.FrameHeaderLen > len(data) {
						t.Fatalf("header error %v without a whole header", err)
					}
				}
				return
			}
			switch {
			case typ == wire.FrameData && n > fuzzLimit,
				typ == wire.FrameControl && n > fuzzLimit/2,
				(typ == wire.FrameHeartbeat || typ == wire.FrameGoodbye) && n != 0:
				t.Fatalf("frame type %#x with %d bytes passed the limits", typ, n)
			}
			var h [wire.FrameHeaderLen]byte
			wire.PutFrameHeader(h[:], typ, n)
			if !bytes.Equal(h[:], data[consumed:consumed+wire.FrameHeaderLen]) {
				t.Fatalf("header %x re-encodes as %x", data[consumed:consumed+wire.FrameHeaderLen], h)
			}
			consumed += wire.FrameHeaderLen
			body := make([]byte, n)
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			consumed += n
		}
	})
}

// FuzzReadHello parses a hello; whatever parses re-encodes to the bytes
// consumed.
func FuzzReadHello(f *testing.F) {
	f.Add(readHex(f, "hello-dialer.hex"))
	f.Add(readHex(f, "hello-listener.hex"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, raw, err := wire.ReadHello(bytes.NewReader(data))
		if err != nil {
			if raw != nil && !errors.Is(err, wire.ErrVersion) {
				t.Fatalf("raw bytes returned with error %v", err)
			}
			return
		}
		if len(raw) > wire.MaxHelloLen || !bytes.Equal(raw, data[:len(raw)]) {
			t.Fatalf("raw %x is not a prefix of the input (or too long)", raw)
		}
		again, err := h.Append(nil)
		if err != nil {
			t.Fatalf("parsed hello does not re-encode: %v", err)
		}
		if !bytes.Equal(again, raw) {
			t.Fatalf("hello re-encodes as %x, read %x", again, raw)
		}
	})
}

// FuzzReadVerdict parses a verdict; whatever parses re-encodes to the
// bytes consumed.
func FuzzReadVerdict(f *testing.F) {
	f.Add(readHex(f, "verdict.hex"))
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		code, reason, err := wire.ReadVerdict(bytes.NewReader(data))
		if err != nil {
			return
		}
		if code > wire.VerdictGone || len(reason) > wire.MaxReason {
			t.Fatalf("verdict (%d, %d bytes) out of range", code, len(reason))
		}
		if again := wire.AppendVerdict(nil, code, reason); !bytes.Equal(again, data[:len(again)]) {
			t.Fatalf("verdict re-encodes as %x, read %x", again, data[:len(again)])
		}
	})
}

// fuzzControl decodes the control frames in data with one decoder of c,
// fed through a ChunkReader as a link's reader does, and checks that what
// it decodes is no bigger than the frame it came from and that a frame it
// accepts holds one message and nothing after it.
func fuzzControl(t *testing.T, c codec.Codec, data []byte) {
	br := bufio.NewReader(bytes.NewReader(data))
	var chunk wire.ChunkReader
	dec := c.NewDecoder(&chunk)
	for {
		typ, n, err := wire.ReadFrameHeader(br, fuzzLimit, fuzzLimit)
		if err != nil {
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		if typ != wire.FrameControl {
			continue
		}
		var ctl wire.Control
		if err := wire.DecodeControl(dec, &chunk, body, &ctl); err != nil {
			return // the core drops the link
		}
		if c == codec.JSON && !json.Valid(body) {
			// Each frame is one JSON value and nothing else (PROTOCOL.md,
			// "Control messages"); a decoder that carried the rest into
			// the next frame would accept this one.
			t.Fatalf("accepted a JSON control frame that is not one JSON value: %q", body)
		}
		if len(ctl.Peers) > n || len(ctl.Meta) > n {
			t.Fatalf("a %d-byte frame decoded to %d peers and %d bytes of meta", n, len(ctl.Peers), len(ctl.Meta))
		}
	}
}

// controlStream encodes cs with c as a link's writer does: one frame per
// Encode, one encoder for the stream.
func controlStream(tb testing.TB, c codec.Codec, cs ...*wire.Control) []byte {
	var out, buf bytes.Buffer
	enc := c.NewEncoder(&buf)
	for _, ctl := range cs {
		buf.Reset()
		if err := enc.Encode(ctl); err != nil {
			tb.Fatal(err)
		}
		var h [wire.FrameHeaderLen]byte
		wire.PutFrameHeader(h[:], wire.FrameControl, buf.Len())
		out.Write(h[:])
		out.Write(buf.Bytes())
	}
	return out.Bytes()
}

func controlSeeds(f *testing.F, c codec.Codec) {
	f.Add(controlStream(f, c, &goldenControl))
	f.Add(controlStream(f, c, &wire.Control{}, &goldenControl, &wire.Control{MetaSet: true, Meta: []byte("zone=b")}))
	f.Add(readHex(f, "frames.hex"))
	// A message with a stray byte after it in its frame, then a valid
	// frame: the first must be refused on its own.
	one := controlStream(f, c, &goldenControl)
	stray := append(framed(one[wire.FrameHeaderLen:], 'X'), one...)
	f.Add(stray)
}

// framed returns a control frame whose body is body followed by extra.
func framed(body []byte, extra ...byte) []byte {
	b := append(bytes.Clone(body), extra...)
	h := make([]byte, wire.FrameHeaderLen, wire.FrameHeaderLen+len(b))
	wire.PutFrameHeader(h, wire.FrameControl, len(b))
	return append(h, b...)
}

// FuzzGobControl: the gob codec's decoder on hostile control frames.
func FuzzGobControl(f *testing.F) {
	controlSeeds(f, codec.Gob)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzControl(t, codec.Gob, data) })
}

// FuzzJSONControl: the JSON codec's decoder on hostile control frames.
func FuzzJSONControl(f *testing.F) {
	controlSeeds(f, codec.JSON)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzControl(t, codec.JSON, data) })
}
