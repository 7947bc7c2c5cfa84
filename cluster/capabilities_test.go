package cluster

import (
	"testing"
	"testing/synctest"

	"github.com/peerkit/peerkit/transport/memory"
)

// withCapabilities makes a node announce caps, as a later version of
// peerkit that implements features this one does not know would.
func withCapabilities(caps byte) Option {
	return func(o *options) error { o.capabilities = caps; return nil }
}

// A node that announces capability bits today's nodes do not know links
// with them in both roles and exchanges traffic; the link uses no
// capability. Two nodes that announce the same bits share them.
func TestUnknownCapabilityBitsInteroperate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		today := newMemNode(t, nw, "today:1")
		later := newMemNode(t, nw, "later:1", withCapabilities(0x84))
		other := newMemNode(t, nw, "other:1", withCapabilities(0x84|0x10))

		if err := later.Add("today:1"); err != nil { // later dials, today listens
			t.Fatalf("a node with unknown capability bits dialling today's: %v", err)
		}
		if err := today.Add("other:1"); err != nil { // today dials, a later node listens
			t.Fatalf("today's node dialling one with unknown capability bits: %v", err)
		}
		synctest.Wait()
		if !fullMesh([]*Node{today, later, other}) {
			t.Fatalf("no full mesh:%s", meshReport([]*Node{today, later, other}))
		}
		traffic(t, today, later)
		traffic(t, today, other)
		traffic(t, later, other)

		caps := func(n *Node, addr string) byte {
			for _, r := range n.Remotes() {
				if r.Addr() == addr {
					return r.p.link.Load().caps
				}
			}
			t.Fatalf("%s has no link to %s", n.AdvertiseAddr(), addr)
			return 0
		}
		for _, c := range []struct {
			n    *Node
			addr string
			want byte
		}{
			{today, "later:1", 0}, {later, "today:1", 0},
			{today, "other:1", 0}, {other, "today:1", 0},
			{later, "other:1", 0x84}, {other, "later:1", 0x84}, // only what both announced
		} {
			if got := caps(c.n, c.addr); got != c.want {
				t.Errorf("%s's link to %s has capabilities %#x, want %#x", c.n.AdvertiseAddr(), c.addr, got, c.want)
			}
		}
	})
}
