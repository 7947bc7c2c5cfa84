package codec_test

import (
	"testing"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/codec/codectest"
)

func TestGob(t *testing.T)  { codectest.Run(t, codec.Gob) }
func TestJSON(t *testing.T) { codectest.Run(t, codec.JSON) }
