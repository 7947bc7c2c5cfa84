package bench

import "github.com/peerkit/peerkit/cluster"

// NodeEndpoint is an Endpoint that sends from n to the remote to and
// receives from n's Inbox, as ClusterPair's are; for measurements whose
// two nodes are not in one process (package bench/netcond).
func NodeEndpoint(n *cluster.Node, to cluster.Remote) Endpoint { return &clusterEnd{n, to} }

// NewPair makes a Pair of two endpoints; Close runs closers in reverse.
func NewPair(a, b Endpoint, closers ...func()) *Pair { return &Pair{A: a, B: b, close: closers} }
