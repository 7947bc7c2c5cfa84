package cluster

import (
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/peerkit/peerkit/internal/wire"
)

// BenchmarkFrameWriter compares the two ways a payload too large for the
// write buffer's room can go out over TCP loopback: copied through the
// buffer (as bufio.Writer does) or in one vectored write (writev) of the
// buffered bytes and the payload where it lies. (Here the two are within
// noise of each other; end to end, the report decides: see vectoredMin.)
func BenchmarkFrameWriter(b *testing.B) {
	for _, size := range []int{8 << 10, 64 << 10, 256 << 10, 1 << 20} {
		for _, mode := range []string{"copy", "vectored"} {
			b.Run(fmt.Sprintf("size=%d/mode=%s", size, mode), func(b *testing.B) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				defer ln.Close()
				drained := make(chan error, 1)
				go func() {
					c, err := ln.Accept()
					if err == nil {
						_, err = io.Copy(io.Discard, c)
						c.Close()
					}
					drained <- err
				}()
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				w := newFrameWriter(c)
				w.vectored = mode == "vectored"
				body := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if err := w.frame(wire.FrameData, body); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.flush(); err != nil {
					b.Fatal(err)
				}
				c.Close()
				if err := <-drained; err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
