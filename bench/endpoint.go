package bench

import (
	"slices"

	"github.com/peerkit/peerkit/cluster"
)

// NodeEndpoint is an Endpoint that sends from n to the remote to and
// receives from n's Inbox, as ClusterPair's are; for measurements whose
// two nodes are not in one process (package bench/netcond).
func NodeEndpoint(n *cluster.Node, to cluster.Remote) Endpoint { return &clusterEnd{n, to} }

// NewPair makes a Pair of two endpoints; Close runs closers in reverse.
func NewPair(a, b Endpoint, closers ...func()) *Pair { return &Pair{A: a, B: b, close: closers} }

// MedianRate returns the median of rates by messages per second (the
// zero Rate for none).
func MedianRate(rs []Rate) Rate {
	if len(rs) == 0 {
		return Rate{}
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b Rate) int {
		x, y := a.MsgsPerSec(), b.MsgsPerSec()
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	return rs[len(rs)/2]
}
