package cluster

import (
	"errors"
	"sync/atomic"
)

// linkStats counts one link's traffic. The fields are updated by the
// link's goroutines and read by Stats.
type linkStats struct {
	msgsOut, bytesOut atomic.Uint64
	msgsIn, bytesIn   atomic.Uint64
	dropped           atomic.Uint64 // messages queued but never sent
}

// nodeStats counts node-wide events.
type nodeStats struct {
	reconnects     atomic.Uint64
	handshakesShed atomic.Uint64 // closed at accept: too many in progress
	hsIncompatible atomic.Uint64
	hsUnauthorized atomic.Uint64
	hsNotPeerkit   atomic.Uint64
	hsOther        atomic.Uint64
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
