package memory_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

// echo accepts on l and echoes every conn until l closes.
func echo(l net.Listener, wg *sync.WaitGroup) {
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
}

func TestManyDialsAndWriters(t *testing.T) {
	nw := memory.NewNetwork(memory.WithSeed(1))
	defer nw.Close()
	l, err := nw.Listen("srv:1")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	echo(l, &wg)
	var clients sync.WaitGroup
	for i := range 50 {
		clients.Go(func() {
			from := fmt.Sprintf("n%d:1", i)
			c, err := nw.DialFrom(context.Background(), from, "srv:1")
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			msg := bytes.Repeat([]byte{byte(i)}, 3000)
			var writers sync.WaitGroup
			for range 4 {
				writers.Go(func() {
					for range 10 {
						if _, err := c.Write(msg); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			buf := make([]byte, len(msg))
			for range 40 {
				if _, err := io.ReadFull(c, buf); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(buf, msg) {
					t.Error("corrupted echo")
					return
				}
			}
			writers.Wait()
		})
	}
	// Faults concurrently with the traffic: none of these is silent or
	// resetting for the links above, but they take the same locks.
	clients.Go(func() {
		for i := range 100 {
			nw.SetLatency(time.Duration(i%3)*time.Microsecond, time.Microsecond)
			nw.CutLink("x:1", "y:1")
			nw.RestoreLink("x:1", "y:1")
			nw.SetBandwidth(0)
		}
	})
	clients.Wait()
	l.Close()
	wg.Wait()
}

// TestChaosSynctest drives traffic through random faults inside a bubble
// and checks only that nothing hangs, panics or races.
func TestChaosSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithSeed(99), memory.WithBufferSize(8192))
		defer nw.Close()
		nodes := []string{"a:1", "b:1", "c:1"}
		var wg sync.WaitGroup
		for _, n := range nodes {
			l, err := nw.Listen(n)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			echo(l, &wg)
		}
		nw.SetLatency(5*time.Millisecond, 5*time.Millisecond)
		for _, from := range nodes {
			for _, to := range nodes {
				if from == to {
					continue
				}
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					c, err := nw.DialFrom(ctx, from, to)
					if err != nil {
						return
					}
					defer c.Close()
					c.SetDeadline(time.Now().Add(10 * time.Second))
					go io.Copy(io.Discard, c)
					for range 1000 {
						if _, err := c.Write(make([]byte, 100)); err != nil {
							return
						}
						time.Sleep(time.Millisecond)
					}
				})
			}
		}
		time.Sleep(50 * time.Millisecond)
		nw.Partition([]string{"a:1"})
		time.Sleep(100 * time.Millisecond)
		nw.Heal()
		nw.BlackHole("c:1")
		time.Sleep(100 * time.Millisecond)
		nw.Unblackhole("c:1")
		nw.ResetLink("a:1", "b:1")
		nw.Kill("c:1")
		time.Sleep(20 * time.Second)
		nw.Close()
		wg.Wait()
	})
}
