package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame types (PROTOCOL.md, "Frames").
const (
	FrameData      byte = 0x01 // body: the application payload, opaque bytes
	FrameControl   byte = 0x02 // body: one codec-encoded Control value
	FrameHeartbeat byte = 0x03 // body: empty
	FrameGoodbye   byte = 0x04 // body: empty; the sender leaves, do not redial
)

// FrameHeaderLen is the size of a frame header: a 4-byte big-endian body
// length followed by a 1-byte frame type.
const FrameHeaderLen = 5

// MaxFrameLimit is the largest body length the protocol can express that
// peerkit accepts at all; configured limits must not exceed it
// (PROTOCOL.md, "Limits").
const MaxFrameLimit = 1 << 30

// ErrFrameTooLarge reports a frame whose declared length exceeds the limit.
// It is detected from the header alone, before any body byte is read.
var ErrFrameTooLarge = errors.New("wire: frame exceeds size limit")

// ErrUnknownFrame reports a frame type this version does not define.
var ErrUnknownFrame = errors.New("wire: unknown frame type")

// PutFrameHeader writes the header of a frame of type typ with a body of n
// bytes into b, which must be at least FrameHeaderLen long.
func PutFrameHeader(b []byte, typ byte, n int) {
	binary.BigEndian.PutUint32(b, uint32(n))
	b[4] = typ
}

// AppendFrameHeader appends a frame header for a body of n bytes of type
// typ to b.
func AppendFrameHeader(b []byte, typ byte, n int) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(n)), typ)
}

// ReadFrameHeader reads one frame header and checks it with
// ParseFrameHeader. Nothing is allocated.
func ReadFrameHeader(r *bufio.Reader, limit, controlLimit int) (typ byte, n int, err error) {
	// Peek, not io.ReadFull into a local array: the array would escape
	// through the io.Reader interface and cost an allocation per frame.
	h, err := r.Peek(FrameHeaderLen)
	if err != nil {
		if len(h) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF // as io.ReadFull reports a partial header
		}
		return 0, 0, err
	}
	r.Discard(FrameHeaderLen)
	return ParseFrameHeader(h, limit, controlLimit)
}

// ParseFrameHeader checks the frame header at the start of h (at least
// FrameHeaderLen bytes): the type must be known, and the body length at
// most limit (for data frames) or controlLimit (for every other type).
// Heartbeat and goodbye frames must be empty.
func ParseFrameHeader(h []byte, limit, controlLimit int) (typ byte, n int, err error) {
	size := binary.BigEndian.Uint32(h[:4])
	typ = h[4]
	bound := controlLimit
	switch typ {
	case FrameData:
		bound = limit
	case FrameControl:
	case FrameHeartbeat, FrameGoodbye:
		bound = 0
	default:
		return 0, 0, fmt.Errorf("%w 0x%02x", ErrUnknownFrame, typ)
	}
	if uint64(size) > uint64(bound) {
		return 0, 0, fmt.Errorf("%w: type 0x%02x declares %d bytes, limit %d", ErrFrameTooLarge, typ, size, bound)
	}
	return typ, int(size), nil
}
