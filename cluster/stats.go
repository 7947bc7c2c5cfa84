package cluster

import (
	"cmp"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a node's counters, for export to a metrics
// system or for package status. Totals include links that are gone.
type Stats struct {
	Addr     string `json:"addr"`
	Instance uint64 `json:"instance"`
	// Remotes lists every remote the node has an entry for: connected,
	// connecting, or waiting to redial. Sorted by address.
	Remotes []RemoteStats `json:"remotes"`
	// Traffic of data messages (payloads), over all links ever.
	MessagesSent     uint64 `json:"messages_sent"`
	BytesSent        uint64 `json:"bytes_sent"`
	MessagesReceived uint64 `json:"messages_received"`
	BytesReceived    uint64 `json:"bytes_received"`
	// Dropped counts messages queued for a remote that was removed before
	// they could be written, and control messages shed because a queue was
	// full.
	Dropped uint64 `json:"dropped"`
	// DialFailures counts dials whose transport could not open a
	// connection (Add, gossip, redials, dial-backs), before any handshake.
	DialFailures uint64 `json:"dial_failures"`
	// ReconnectAttempts counts redials of ungracefully removed remotes.
	ReconnectAttempts uint64 `json:"reconnect_attempts"`
	// HandshakeFailures counts failed handshakes, both directions, by
	// cause: "incompatible", "unauthorized", "not_peerkit", "other", and
	// "shed" for connections closed at accept because too many handshakes
	// were in progress.
	HandshakeFailures map[string]uint64 `json:"handshake_failures"`
	// RecentFailures are the last failed dials and handshakes (at most
	// MaxRecentFailures), oldest first.
	RecentFailures []Failure `json:"recent_failures"`
	// RecentRemovals are the last remotes removed (at most
	// MaxRecentFailures), with why, oldest first.
	RecentRemovals []Removal `json:"recent_removals"`
}

// Removal is one remote removed, as Stats.RecentRemovals reports it.
type Removal struct {
	Time     time.Time `json:"time"`
	Addr     string    `json:"addr"`
	Instance uint64    `json:"instance"`
	Reason   Reason    `json:"reason"`
	// Err is what ended the link of a lost remote.
	Err string `json:"err,omitempty"`
}

// MarshalText makes Reason print as its name in JSON.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// MaxRecentFailures is how many failures Stats.RecentFailures keeps.
const MaxRecentFailures = 16

// Failure is one failed dial or handshake.
type Failure struct {
	Time time.Time `json:"time"`
	// Addr is the address dialled, or the peer's claimed address (its
	// connection's address before it sent a hello).
	Addr string `json:"addr"`
	// Stage is "dial" (the transport could not connect) or "handshake".
	Stage string `json:"stage"`
	// Dialed reports whether this node dialled.
	Dialed bool   `json:"dialed"`
	Err    string `json:"err"`
}

// RemoteStats describes one remote.
type RemoteStats struct {
	Addr     string `json:"addr"`
	Instance uint64 `json:"instance,omitempty"`
	State    State  `json:"state"`
	// Meta is the remote's metadata, as last heard (see WithMeta).
	Meta []byte `json:"meta,omitempty"`
	// Since is when the remote entered its state.
	Since time.Time `json:"since"`
	// LastHeard is when bytes last arrived from it (zero if not connected).
	LastHeard time.Time `json:"last_heard,omitzero"`
	// Traffic over the current link.
	MessagesSent     uint64 `json:"messages_sent"`
	BytesSent        uint64 `json:"bytes_sent"`
	MessagesReceived uint64 `json:"messages_received"`
	BytesReceived    uint64 `json:"bytes_received"`
	Dropped          uint64 `json:"dropped"`
	// QueueDepth is how many messages wait in the send queue, of
	// QueueCapacity.
	QueueDepth    int `json:"queue_depth"`
	QueueCapacity int `json:"queue_capacity"`
}

// MarshalText makes State print as its name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// linkStats counts one link's traffic. The fields are updated by the
// link's goroutines and read by Stats.
type linkStats struct {
	msgsOut, bytesOut atomic.Uint64
	msgsIn, bytesIn   atomic.Uint64
	dropped           atomic.Uint64 // data messages queued but never written
	shed              atomic.Uint64 // control messages not queued: the queue was full
}

// add folds s into the totals of st.
func (s *linkStats) addTo(st *Stats) {
	st.MessagesSent += s.msgsOut.Load()
	st.BytesSent += s.bytesOut.Load()
	st.MessagesReceived += s.msgsIn.Load()
	st.BytesReceived += s.bytesIn.Load()
	st.Dropped += s.dropped.Load() + s.shed.Load()
}

// nodeStats counts node-wide events.
type nodeStats struct {
	reconnects     atomic.Uint64
	dialFailures   atomic.Uint64
	handshakesShed atomic.Uint64 // closed at accept: too many in progress
	hsIncompatible atomic.Uint64
	hsUnauthorized atomic.Uint64
	hsNotPeerkit   atomic.Uint64
	hsOther        atomic.Uint64
	retired        Stats // totals of links gone; guarded by Node.mu

	failMu   sync.Mutex
	failures []Failure // the last MaxRecentFailures, oldest first
	removals []Removal // likewise
}

// removal records a remote removed.
func (s *nodeStats) removal(e Event) {
	r := Removal{Time: time.Now(), Addr: e.Remote.Addr(), Instance: e.Remote.Instance(), Reason: e.Reason}
	if e.Err != nil {
		r.Err = e.Err.Error()
	}
	s.failMu.Lock()
	defer s.failMu.Unlock()
	s.removals = appendBounded(s.removals, r)
}

// appendBounded appends v to a list of at most MaxRecentFailures, dropping
// the oldest.
func appendBounded[T any](list []T, v T) []T {
	if len(list) == MaxRecentFailures {
		copy(list, list[1:])
		list = list[:MaxRecentFailures-1]
	}
	return append(list, v)
}

// failure records a failed dial or handshake.
func (s *nodeStats) failure(addr, stage string, dialed bool, err error) {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	s.failures = appendBounded(s.failures, Failure{Time: time.Now(), Addr: addr, Stage: stage, Dialed: dialed, Err: err.Error()})
}

func (s *nodeStats) recent() ([]Failure, []Removal) {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return slices.Clone(s.failures), slices.Clone(s.removals)
}

func (s *nodeStats) handshakeFailure(err error) {
	switch {
	case errors.Is(err, ErrIncompatible):
		s.hsIncompatible.Add(1)
	case errors.Is(err, ErrUnauthorized):
		s.hsUnauthorized.Add(1)
	case errors.Is(err, ErrNotPeerkit):
		s.hsNotPeerkit.Add(1)
	default:
		s.hsOther.Add(1)
	}
}

// linkStopped folds the counters of a link whose goroutines have stopped
// into the node's totals.
func (n *Node) linkStopped(l *link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.links[l]; ok {
		delete(n.links, l)
		l.stats.addTo(&n.stats.retired)
		l.retired = true
	}
}

// countDropped counts messages of l's queue that will never be written.
// If the link was retired already, they go to the totals directly.
func (n *Node) countDropped(l *link, k uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l.stats.dropped.Add(k)
	if l.retired {
		n.stats.retired.Dropped += k
	}
}

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	st := n.stats.retired
	st.Addr, st.Instance = n.self.Addr, n.self.Instance
	for l := range n.links {
		l.stats.addTo(&st)
	}
	st.Remotes = make([]RemoteStats, 0, len(n.table.remotes))
	for _, e := range n.table.remotes {
		rs := RemoteStats{Addr: e.addr, State: e.state(), Since: e.since}
		if e.peer != nil {
			rs.Instance = e.peer.instance
			rs.Meta = *e.peer.meta.Load()
		}
		if l := e.link; l != nil {
			rs.LastHeard = time.Unix(0, l.heard.Load())
			rs.MessagesSent = l.stats.msgsOut.Load()
			rs.BytesSent = l.stats.bytesOut.Load()
			rs.MessagesReceived = l.stats.msgsIn.Load()
			rs.BytesReceived = l.stats.bytesIn.Load()
			rs.Dropped = l.stats.dropped.Load() + l.stats.shed.Load()
			rs.QueueDepth, rs.QueueCapacity = l.queue.depth(), l.queue.limit
		}
		st.Remotes = append(st.Remotes, rs)
	}
	n.mu.Unlock()
	slices.SortFunc(st.Remotes, func(a, b RemoteStats) int { return cmp.Compare(a.Addr, b.Addr) })
	st.ReconnectAttempts = n.stats.reconnects.Load()
	st.DialFailures = n.stats.dialFailures.Load()
	st.RecentFailures, st.RecentRemovals = n.stats.recent()
	st.HandshakeFailures = map[string]uint64{
		"incompatible": n.stats.hsIncompatible.Load(),
		"unauthorized": n.stats.hsUnauthorized.Load(),
		"not_peerkit":  n.stats.hsNotPeerkit.Load(),
		"other":        n.stats.hsOther.Load(),
		"shed":         n.stats.handshakesShed.Load(),
	}
	return st
}
