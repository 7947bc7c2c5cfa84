package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/transport/memory"
)

// stalledCluster starts a node with a send queue of q, six healthy remotes
// that drain their Inbox and note when each payload arrived, and one
// remote that never reads its Inbox, so that the node's queue for it fills
// and stays full.
func stalledCluster(t *testing.T, nw *memory.Network, q int) (a *Node, arrived func(i int) []time.Time) {
	t.Helper()
	opts := []Option{WithNetworkTimeout(time.Second), WithSendQueueSize(q), WithInboxSize(1)}
	a = newMemNode(t, nw, "a:1", opts...)
	var mu sync.Mutex
	at := map[int][]time.Time{}
	for i := range 7 {
		r := newMemNode(t, nw, fmt.Sprintf("r%d:1", i), opts...)
		if err := a.Add(r.AdvertiseAddr()); err != nil {
			t.Fatal(err)
		}
		if i == 6 {
			continue // stalled: nobody reads its Inbox
		}
		go func() {
			for m := range r.Inbox {
				if k, err := strconv.Atoi(string(m.Payload[:4])); err == nil {
					mu.Lock()
					at[k] = append(at[k], time.Now())
					mu.Unlock()
				}
			}
		}()
	}
	synctest.Wait()
	return a, func(i int) []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return at[i]
	}
}

// A healthy remote whose queue is full for a moment gets a broadcast as
// soon as its queue has room, never after a stalled remote's wait: the
// waits for all full queues run at once, under one deadline. (Broadcast
// used to wait for the full queues one at a time, so a healthy remote
// queued after a stalled one got the payload a whole network timeout
// late.) The times are exact: the memory network has no latency here.
func TestBroadcastNeverWaitsBehindStalledRemote(t *testing.T) {
	for q := 1; q <= 4; q++ {
		t.Run(fmt.Sprintf("queue=%d", q), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := memory.NewNetwork(memory.WithBufferSize(1024))
				defer nw.Close()
				a, arrived := stalledCluster(t, nw, q)
				payload := make([]byte, 256)
				const rounds = 24
				sent := make([]time.Time, rounds)
				var timedOut int
				for i := range rounds {
					copy(payload, fmt.Sprintf("%04d", i))
					sent[i] = time.Now()
					err := a.Broadcast(payload)
					took := time.Since(sent[i])
					switch {
					case err == nil:
						if took != 0 {
							t.Fatalf("broadcast %d: no error, but it took %v", i, took)
						}
					case errors.Is(err, ErrSendTimeout):
						timedOut++
						if took != time.Second {
							t.Fatalf("broadcast %d gave up after %v, want the network timeout (1s) exactly", i, took)
						}
						if want := "r6:1: " + ErrSendTimeout.Error(); err.Error() != want {
							t.Fatalf("broadcast %d: error %q, want only the stalled remote's: %q", i, err, want)
						}
					default:
						t.Fatalf("broadcast %d: %v", i, err)
					}
				}
				if timedOut == 0 {
					t.Fatal("the stalled remote's queue never filled: the test tests nothing")
				}
				synctest.Wait()
				for i := range rounds {
					got := arrived(i)
					if len(got) != 6 {
						t.Fatalf("broadcast %d reached %d healthy remotes, want 6", i, len(got))
					}
					for _, at := range got {
						if d := at.Sub(sent[i]); d != 0 {
							t.Fatalf("broadcast %d reached a healthy remote %v after it was sent, want at once", i, d)
						}
					}
				}
			})
		})
	}
}

// BroadcastContext's context bounds the wait for full queues too; the
// healthy remotes still get the payload at once.
func TestBroadcastContextEndsTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork(memory.WithBufferSize(1024))
		defer nw.Close()
		a, arrived := stalledCluster(t, nw, 2)
		payload := make([]byte, 256)
		for i := 0; ; i++ {
			if i == 100 {
				t.Fatal("the stalled remote's queue never filled")
			}
			copy(payload, fmt.Sprintf("%04d", i))
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			start := time.Now()
			err := a.BroadcastContext(ctx, payload)
			cancel()
			if err == nil {
				continue
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("BroadcastContext = %v, want the context's error", err)
			}
			if d := time.Since(start); d != 100*time.Millisecond {
				t.Fatalf("BroadcastContext gave up after %v, want the context's 100ms", d)
			}
			synctest.Wait()
			for _, at := range arrived(i) {
				if !at.Equal(start) {
					t.Fatalf("a healthy remote got the payload %v late", at.Sub(start))
				}
			}
			if n := len(arrived(i)); n != 6 {
				t.Fatalf("payload reached %d healthy remotes, want 6", n)
			}
			break
		}
		if err := a.BroadcastContext(context.Background(), make([]byte, DefaultMaxMessageSize+1)); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("oversized BroadcastContext = %v", err)
		}
	})
}
