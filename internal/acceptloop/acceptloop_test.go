package acceptloop

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

func TestBackoffDoublesToCapAndResets(t *testing.T) {
	var b Backoff
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for i, w := range want {
		if got := b.Next(); got != w*time.Millisecond {
			t.Fatalf("delay %d = %v, want %v", i, got, w*time.Millisecond)
		}
	}
	b.Reset()
	if got := b.Next(); got != MinDelay {
		t.Fatalf("after Reset: %v, want %v", got, MinDelay)
	}
}

func TestClosed(t *testing.T) {
	for _, tc := range []struct {
		err    error
		closed bool
	}{
		{&net.OpError{Op: "accept", Err: net.ErrClosed}, true},
		{fmt.Errorf("wrapped: %w", net.ErrClosed), true},
		{&net.OpError{Op: "accept", Err: syscall.EMFILE}, false},
		{&net.OpError{Op: "accept", Err: syscall.ECONNABORTED}, false},
		{errors.New("anything else"), false},
	} {
		if got := Closed(tc.err); got != tc.closed {
			t.Errorf("Closed(%v) = %v, want %v", tc.err, got, tc.closed)
		}
	}
}

func TestWaitEndsWhenDone(t *testing.T) {
	var b Backoff
	for range 20 { // reach the 1 s cap
		b.Next()
	}
	done := make(chan struct{})
	close(done)
	start := time.Now()
	if b.Wait(nil, "test", errors.New("x"), done) {
		t.Fatal("Wait returned true with done closed")
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatal("Wait did not return at once when done was closed")
	}
}
