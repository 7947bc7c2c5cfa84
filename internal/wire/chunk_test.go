package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/internal/wire"
)

// Each control frame is decoded on its own: a frame with bytes after its
// message is refused when it arrives, not when (or if) the next one does.
func TestDecodeControlRefusesTrailingBytes(t *testing.T) {
	for _, c := range []codec.Codec{codec.Gob, codec.JSON} {
		t.Run(c.Name(), func(t *testing.T) {
			var buf bytes.Buffer
			enc := c.NewEncoder(&buf)
			encode := func(ctl *wire.Control) []byte {
				buf.Reset()
				if err := enc.Encode(ctl); err != nil {
					t.Fatal(err)
				}
				return bytes.Clone(buf.Bytes())
			}
			first := encode(&goldenControl)
			second := encode(&wire.Control{MetaSet: true, Meta: []byte("zone=b")})

			var chunk wire.ChunkReader
			dec := c.NewDecoder(&chunk)
			var ctl wire.Control
			err := wire.DecodeControl(dec, &chunk, append(bytes.Clone(first), 'X'), &ctl)
			if !errors.Is(err, wire.ErrTrailing) {
				t.Fatalf("frame with a stray byte after its message: err = %v, want ErrTrailing", err)
			}

			// Without the stray byte the same stream decodes frame by frame.
			dec = c.NewDecoder(&chunk)
			for i, body := range [][]byte{first, second} {
				if err := wire.DecodeControl(dec, &chunk, body, &ctl); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
			}
			if !ctl.MetaSet || string(ctl.Meta) != "zone=b" {
				t.Fatalf("second frame decoded to %+v", ctl)
			}
		})
	}
}

// Whitespace after a JSON message is not trailing bytes: the JSON codec
// ends every message with a newline, and PROTOCOL.md allows whitespace.
func TestDecodeControlJSONAllowsWhitespace(t *testing.T) {
	var chunk wire.ChunkReader
	dec := codec.JSON.NewDecoder(&chunk)
	var ctl wire.Control
	if err := wire.DecodeControl(dec, &chunk, []byte("{\"MetaSet\":true,\"Meta\":\"eg==\"}\n \t\r\n"), &ctl); err != nil {
		t.Fatal(err)
	}
	if err := wire.DecodeControl(dec, &chunk, []byte(" {\"Peers\":null}"), &ctl); err != nil {
		t.Fatal(err)
	}
	if err := wire.DecodeControl(dec, &chunk, []byte("{}{}"), &ctl); !errors.Is(err, wire.ErrTrailing) {
		t.Fatalf("two messages in one frame: err = %v, want ErrTrailing", err)
	}
}
