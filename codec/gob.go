package codec

import (
	"encoding/gob"
	"io"
)

// Gob is the default codec, built on encoding/gob. Its type information
// travels once per link.
//
// encoding/gob is not hardened against hostile input; peerkit bounds what it
// sees by the frame limit, and with cluster.WithSecret it only ever decodes
// bytes from authenticated peers.
var Gob Codec = gobCodec{}

type gobCodec struct{}

func (gobCodec) Name() string                   { return "gob" }
func (gobCodec) NewEncoder(w io.Writer) Encoder { return gob.NewEncoder(w) }
func (gobCodec) NewDecoder(r io.Reader) Decoder { return gob.NewDecoder(r) }
