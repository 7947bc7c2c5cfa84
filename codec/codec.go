// Package codec defines how peerkit encodes the control messages of its
// protocol (peer lists, goodbyes, metadata updates) and provides the two
// built-in codecs: gob, the default, and JSON.
//
// Codecs are stream-shaped, like encoding/gob and encoding/json: one
// Encoder and one Decoder live as long as a link, so gob sends its type
// information once per link, not once per message. The cluster core hands
// each Encode call's output to the peer as one length-prefixed frame and
// feeds each received frame to the Decoder, so a Decoder never sees more
// bytes than the frame limit allows, and never sees bytes from a peer that
// has not completed the handshake.
//
// Application payloads do not pass through the codec: they travel as raw
// frame bytes, so the codec's cost does not grow with the payload.
//
// Third-party codecs can check themselves with package codectest.
package codec

import "io"

// Codec makes encoders and decoders for one stream.
type Codec interface {
	// Name identifies the codec in the handshake. Two nodes whose codec
	// names differ refuse each other. At most 64 bytes of ASCII.
	Name() string
	// NewEncoder returns an encoder that writes to w.
	NewEncoder(w io.Writer) Encoder
	// NewDecoder returns a decoder that reads from r.
	NewDecoder(r io.Reader) Decoder
}

// Encoder writes values to a stream.
type Encoder interface {
	Encode(v any) error
}

// Decoder reads values, in the order they were encoded, from a stream.
// A decoder must return an error, never panic, on malformed input.
//
// The core decodes each frame on its own: the reader ends every frame
// with io.EOF, and bytes of the frame left after the value are a protocol
// error that drops the link. A decoder that reads ahead into a buffer of
// its own (as encoding/json's does) must report what it holds with a
// method Buffered() io.Reader, as *json.Decoder does, so that the core can
// see them; only whitespace may be left there.
type Decoder interface {
	Decode(v any) error
}
