package codec

import (
	"encoding/json"
	"io"
)

// JSON is a codec built on encoding/json: slower than Gob, but readable
// on the wire and easy to implement in other languages.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) Name() string                   { return "json" }
func (jsonCodec) NewEncoder(w io.Writer) Encoder { return json.NewEncoder(w) }
func (jsonCodec) NewDecoder(r io.Reader) Decoder { return json.NewDecoder(r) }
