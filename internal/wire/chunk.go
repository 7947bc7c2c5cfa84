package wire

import "io"

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
