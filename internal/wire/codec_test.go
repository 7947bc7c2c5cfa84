package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/internal/wire"
)

// Control messages through each codec as a link uses them: one encoder
// and one decoder per stream, one frame per value, read through a
// ChunkReader (PROTOCOL.md, "Control messages").
func TestControlStreamRoundTrip(t *testing.T) {
	msgs := []*wire.Control{
		{},
		&goldenControl,
		{MetaSet: true, Meta: []byte("zone=b")},
		{Peers: []wire.Peer{{Addr: "x:1", Instance: ^uint64(0)}}},
	}
	for _, c := range []codec.Codec{codec.Gob, codec.JSON} {
		t.Run(c.Name(), func(t *testing.T) {
			var buf bytes.Buffer
			enc := c.NewEncoder(&buf)
			var chunk wire.ChunkReader
			dec := c.NewDecoder(&chunk)
			for i := 0; i < 3; i++ {
				for _, m := range msgs {
					buf.Reset()
					if err := enc.Encode(m); err != nil {
						t.Fatal(err)
					}
					chunk.Reset(bytes.Clone(buf.Bytes()))
					var got wire.Control
					if err := dec.Decode(&got); err != nil {
						t.Fatal(err)
					}
					if chunk.Len() != 0 {
						t.Fatalf("%d bytes of the frame left", chunk.Len())
					}
					if fmt.Sprint(got.Peers) != fmt.Sprint(m.Peers) || got.MetaSet != m.MetaSet || !bytes.Equal(got.Meta, m.Meta) {
						t.Fatalf("got %+v, want %+v", got, m)
					}
				}
			}
		})
	}
}

// A gob decoder keeps every type a stream defines; a stream that keeps
// defining new ones is refused once it passes codec.MaxGobTypes, so a peer
// cannot grow a link's decoder without bound.
func TestGobStreamTypeDefinitionsBounded(t *testing.T) {
	var buf bytes.Buffer
	enc := codec.Gob.NewEncoder(&buf)
	var chunk wire.ChunkReader
	dec := codec.Gob.NewDecoder(&chunk)
	for i := 0; i < 2*codec.MaxGobTypes; i++ {
		typ := reflect.StructOf([]reflect.StructField{
			{Name: "MetaSet", Type: reflect.TypeFor[bool]()},
			{Name: fmt.Sprintf("X%d", i), Type: reflect.TypeFor[int]()},
		})
		v := reflect.New(typ)
		v.Elem().Field(0).SetBool(true)
		buf.Reset()
		if err := enc.Encode(v.Interface()); err != nil {
			t.Fatal(err)
		}
		chunk.Reset(bytes.Clone(buf.Bytes()))
		var got wire.Control
		err := dec.Decode(&got)
		if i < codec.MaxGobTypes && err != nil {
			t.Fatalf("frame %d (type %d): %v", i, i+1, err)
		}
		if i >= codec.MaxGobTypes {
			if !errors.Is(err, codec.ErrTooManyTypes) {
				t.Fatalf("frame %d (type %d) = %v, want ErrTooManyTypes", i, i+1, err)
			}
			return
		}
	}
}
