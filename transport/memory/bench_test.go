package memory_test

import (
	"io"
	"strconv"
	"testing"

	"github.com/peerkit/peerkit/transport/memory"
)

func BenchmarkThroughput(b *testing.B) {
	for _, size := range []int{128, 32 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			nw := memory.NewNetwork()
			defer nw.Close()
			l := listen(b, nw, "b:1")
			c, s := connect(b, nw, l, "a:1")
			done := make(chan struct{})
			go func() {
				defer close(done)
				io.Copy(io.Discard, s)
			}()
			msg := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			<-done
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
