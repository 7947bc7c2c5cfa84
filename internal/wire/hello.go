package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Handshake constants (PROTOCOL.md, "Hello").
const (
	// Magic opens every peerkit stream.
	Magic = "PKIT"
	// Version is the protocol version this package speaks.
	Version byte = 1
	// NonceLen is the length of the random nonce in a hello.
	NonceLen = 32
	// MaxCodecName, MaxAddr and MaxMeta bound the variable hello fields.
	MaxCodecName = 64
	MaxAddr      = 255
	MaxMeta      = 4096
	// helloFixedLen covers magic, version, flags, instance id, nonce and
	// the codec name's length byte.
	helloFixedLen = 4 + 1 + 1 + 8 + NonceLen + 1
	// MaxHelloLen is the largest hello on the wire.
	MaxHelloLen = helloFixedLen + MaxCodecName + 2 + MaxAddr + 2 + MaxMeta
)

// Hello flags.
const (
	// FlagAuth: the sender has a shared secret and requires proofs.
	FlagAuth byte = 1 << 0
	// FlagExplicit: the dial comes from an explicit Add, which overrides
	// the listener's tombstone for the dialer.
	FlagExplicit byte = 1 << 1
	// CapabilityMask covers the capability bits (PROTOCOL.md, "Hello" and
	// "Versioning"): each names an optional feature of the protocol, such
	// as a later frame type or control field, which a node uses on a link
	// only if both hellos set its bit.
	CapabilityMask byte = 0xfc
	// Capabilities is the set this package implements: none yet. Version 1
	// without capabilities is what every version-1 node speaks.
	Capabilities byte = 0
)

// Capabilities returns the capability bits of h.
func (h *Hello) Capabilities() byte { return h.Flags & CapabilityMask }

// Hello errors. ErrNotPeerkit means the bytes are not this protocol at all;
// ErrVersion that they are, in a version this package does not speak.
var (
	ErrNotPeerkit = errors.New("wire: not a peerkit stream (bad magic)")
	ErrVersion    = errors.New("wire: unsupported protocol version")
	ErrMalformed  = errors.New("wire: malformed handshake")
)

// Hello is the first message each side sends, before anything else.
type Hello struct {
	Version  byte
	Flags    byte
	Instance uint64
	Nonce    [NonceLen]byte
	Codec    string
	Addr     string
	Meta     []byte
}

// Append appends the wire form of h to b. It fails if a field exceeds its
// bound.
func (h *Hello) Append(b []byte) ([]byte, error) {
	switch {
	case len(h.Codec) == 0 || len(h.Codec) > MaxCodecName:
		return b, fmt.Errorf("%w: codec name must be 1..%d bytes", ErrMalformed, MaxCodecName)
	case len(h.Addr) == 0 || len(h.Addr) > MaxAddr:
		return b, fmt.Errorf("%w: address must be 1..%d bytes", ErrMalformed, MaxAddr)
	case len(h.Meta) > MaxMeta:
		return b, fmt.Errorf("%w: meta exceeds %d bytes", ErrMalformed, MaxMeta)
	}
	b = append(b, Magic...)
	b = append(b, h.Version, h.Flags)
	b = binary.BigEndian.AppendUint64(b, h.Instance)
	b = append(b, h.Nonce[:]...)
	b = append(b, byte(len(h.Codec)))
	b = append(b, h.Codec...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Addr)))
	b = append(b, h.Addr...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Meta)))
	b = append(b, h.Meta...)
	return b, nil
}

// ReadHello reads one hello from r. It checks the magic and the version
// before reading anything of variable length, and every length against its
// bound before reading the field. It returns the raw bytes it consumed too,
// which authentication proofs cover.
func ReadHello(r io.Reader) (*Hello, []byte, error) {
	raw := make([]byte, helloFixedLen, 128)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(raw[:4], []byte(Magic)) {
		return nil, nil, ErrNotPeerkit
	}
	h := &Hello{Version: raw[4], Flags: raw[5]}
	if h.Version != Version {
		return h, raw, fmt.Errorf("%w: peer speaks %d, we speak %d", ErrVersion, h.Version, Version)
	}
	h.Instance = binary.BigEndian.Uint64(raw[6:14])
	copy(h.Nonce[:], raw[14:14+NonceLen])
	n := int(raw[helloFixedLen-1])
	if n == 0 || n > MaxCodecName {
		return nil, nil, fmt.Errorf("%w: codec name length %d", ErrMalformed, n)
	}
	var err error
	var field []byte
	if raw, field, err = readField(r, raw, n); err != nil {
		return nil, nil, err
	}
	h.Codec = string(field)
	if raw, n, err = readLen16(r, raw); err != nil {
		return nil, nil, err
	}
	if n == 0 || n > MaxAddr {
		return nil, nil, fmt.Errorf("%w: address length %d", ErrMalformed, n)
	}
	if raw, field, err = readField(r, raw, n); err != nil {
		return nil, nil, err
	}
	h.Addr = string(field)
	if raw, n, err = readLen16(r, raw); err != nil {
		return nil, nil, err
	}
	if n > MaxMeta {
		return nil, nil, fmt.Errorf("%w: meta length %d", ErrMalformed, n)
	}
	if raw, field, err = readField(r, raw, n); err != nil {
		return nil, nil, err
	}
	if n > 0 {
		h.Meta = bytes.Clone(field)
	}
	return h, raw, nil
}

func readLen16(r io.Reader, raw []byte) ([]byte, int, error) {
	raw, f, err := readField(r, raw, 2)
	if err != nil {
		return nil, 0, err
	}
	return raw, int(binary.BigEndian.Uint16(f)), nil
}

// readField appends n bytes from r to raw (n is already bounded by the
// caller) and returns them.
func readField(r io.Reader, raw []byte, n int) ([]byte, []byte, error) {
	start := len(raw)
	raw = append(raw, make([]byte, n)...)
	if _, err := io.ReadFull(r, raw[start:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, err
	}
	return raw, raw[start:], nil
}
