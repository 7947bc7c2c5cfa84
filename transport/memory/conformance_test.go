package memory_test

import (
	"testing"

	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/memory"
	"github.com/peerkit/peerkit/transport/transporttest"
)

func TestConformance(t *testing.T) {
	transporttest.Run(t, func(t testing.TB) (transport.Transport, string) {
		nw := memory.NewNetwork()
		t.Cleanup(func() { nw.Close() })
		return nw, "node:0"
	})
}
