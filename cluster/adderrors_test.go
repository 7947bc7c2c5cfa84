package cluster

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/memory"
	"github.com/peerkit/peerkit/transport/tcp"
	"github.com/peerkit/peerkit/transport/transporttest"
)

// Every error Add returns matches a row of the README's table, and the two
// kinds of refusal cannot be confused: nothing listening is ErrUnreachable
// (and transport.ErrRefused), a peer declining is ErrDeclined.
func TestAddErrorsMatchTheTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a := newMemNode(t, nw, "a:1")
		newMemNode(t, nw, "json:1", WithCodec(codec.JSON))
		newMemNode(t, nw, "full:1", WithMaxRemotes(1))
		newMemNode(t, nw, "other:1")
		if err := a.Add("other:1"); err != nil {
			t.Fatal(err)
		}
		// full:1 takes one remote, then is busy.
		full := newMemNode(t, nw, "filler:1")
		if err := full.Add("full:1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		silent, err := nw.Listen("silent:1") // accepts, never answers
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()

		// Shorter than the handshake timeout (the network timeout, 500 ms).
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		cases := []struct {
			name string
			err  error
			want []error
			not  []error
		}{
			{"nothing listens", a.Add("nobody:1"), []error{ErrUnreachable, transport.ErrRefused}, []error{ErrDeclined, ErrHandshake}},
			{"codec differs", a.Add("json:1"), []error{ErrHandshake, ErrIncompatible}, []error{ErrUnreachable}},
			{"busy", a.Add("full:1"), []error{ErrHandshake, ErrDeclined}, []error{ErrUnreachable, transport.ErrRefused}},
			{"self", a.Add("a:1"), []error{ErrSelf}, nil},
			{"context", a.AddContext(ctx, "silent:1"), []error{context.DeadlineExceeded}, nil},
		}
		for _, c := range cases {
			if c.err == nil {
				t.Errorf("%s: Add succeeded", c.name)
				continue
			}
			for _, w := range c.want {
				if !errors.Is(c.err, w) {
					t.Errorf("%s: %v does not match %v", c.name, c.err, w)
				}
			}
			for _, w := range c.not {
				if errors.Is(c.err, w) {
					t.Errorf("%s: %v matches %v", c.name, c.err, w)
				}
			}
		}
		st := a.Stats()
		if st.DialFailures != 1 {
			t.Errorf("Stats().DialFailures = %d, want 1 (the address where nothing listens)", st.DialFailures)
		}
		a.Close()
		if err := a.Add("other:1"); !errors.Is(err, ErrClosed) {
			t.Errorf("Add after Close = %v, want ErrClosed", err)
		}
	})
	// Over TCP too: a closed port.
	tr, err := tcp.New()
	if err != nil {
		t.Fatal(err)
	}
	n, err := New("127.0.0.1:0", testOpts(WithTransport(tr))...)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Add(transporttest.ClosedAddr(t, tr, "127.0.0.1:0")); !errors.Is(err, ErrUnreachable) || !errors.Is(err, transport.ErrRefused) {
		t.Fatalf("Add to a closed TCP port = %v, want ErrUnreachable and transport.ErrRefused", err)
	}
}
