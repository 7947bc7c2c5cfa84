package wire

import (
	"errors"
	"io"
)

// ChunkReader presents one control frame's body to a stream decoder
// (PROTOCOL.md, "Control messages": one value per frame) and
// reports io.EOF at its end, so a decoder never reads past a frame. It
// implements io.ByteReader so that encoding/gob reads from it directly
// instead of adding a buffer that would read ahead.
type ChunkReader struct {
	b []byte
}

// Reset makes b the chunk to read.
func (c *ChunkReader) Reset(b []byte) { c.b = b }

// Len returns how many bytes of the chunk are unread.
func (c *ChunkReader) Len() int { return len(c.b) }

// Bytes returns the unread bytes, without consuming them; they are valid
// until the next Reset. A decoder that can work on them in place saves
// copying them out.
func (c *ChunkReader) Bytes() []byte { return c.b }

// Discard consumes the next n unread bytes (at most Len).
func (c *ChunkReader) Discard(n int) { c.b = c.b[min(n, len(c.b)):] }

// Read implements io.Reader.
func (c *ChunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.b)
	c.b = c.b[n:]
	return n, nil
}

// ReadByte implements io.ByteReader.
func (c *ChunkReader) ReadByte() (byte, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	b := c.b[0]
	c.b = c.b[1:]
	return b, nil
}

// ErrTrailing means a control frame held bytes after its one message
// (PROTOCOL.md, "Control messages"): a protocol error.
var ErrTrailing = errors.New("bytes after the message in a control frame")

// Decoder is the decoding half of a codec (codec.Decoder).
type Decoder interface {
	Decode(v any) error
}

// DecodeControl decodes body, one control frame's body, into c with dec,
// a decoder that reads from chunk: each frame is decoded on its own, and
// bytes left after the message are ErrTrailing, whether dec left them in
// the chunk or read them ahead into a buffer of its own. A decoder that
// reads ahead (encoding/json's does) is asked for what it holds through a
// Buffered method, as *json.Decoder has; whitespace there is allowed (the
// JSON codec ends each message with a newline).
func DecodeControl(dec Decoder, chunk *ChunkReader, body []byte, c *Control) error {
	chunk.Reset(body)
	if err := dec.Decode(c); err != nil {
		return err
	}
	if chunk.Len() != 0 {
		return ErrTrailing
	}
	if b, ok := dec.(interface{ Buffered() io.Reader }); ok {
		// What the decoder holds comes from this frame only: the chunk
		// ends it with io.EOF.
		var buf [64]byte
		r := b.Buffered()
		for {
			n, err := r.Read(buf[:])
			for _, x := range buf[:n] {
				if x != ' ' && x != '\t' && x != '\r' && x != '\n' {
					return ErrTrailing
				}
			}
			if err != nil || n == 0 {
				return nil
			}
		}
	}
	return nil
}
