package netcond

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/peerkit/peerkit/cluster"
)

// The requests that act on one of a session's nodes: MODE, WAIT, SEND.

func (ss *session) node(s string) (*srvNode, error) {
	i, err := number(s, 0, MaxNodes-1)
	if err != nil {
		return nil, protoErr("%v", err)
	}
	if i >= len(ss.nodes) {
		return nil, fmt.Errorf("no node %d (NODES started %d)", i, len(ss.nodes))
	}
	return ss.nodes[i], nil
}

func (ss *session) mode(f []string) error {
	sn, err := ss.node(f[0])
	if err != nil {
		return err
	}
	echo := -1
	switch {
	case f[1] == "sink" && len(f) == 2:
	case f[1] == "echo" && len(f) == 3:
		if echo, err = number(f[2], 0, MaxSize); err != nil {
			return protoErr("%v", err)
		}
	default:
		return protoErr("MODE <i> sink | MODE <i> echo <max>")
	}
	sn.mu.Lock()
	sn.echo = echo
	sn.mu.Unlock()
	return nil
}

func (ss *session) wait(i, ms string) (string, error) {
	sn, err := ss.node(i)
	if err != nil {
		return "", err
	}
	d, err := number(ms, 0, int(MaxWait/time.Millisecond))
	if err != nil {
		return "", protoErr("%v", err)
	}
	t := time.NewTimer(time.Duration(d) * time.Millisecond)
	defer t.Stop()
	select {
	case e := <-sn.ends:
		return fmt.Sprintf(" %d %d", e[0], e[1]), nil
	case <-t.C:
		return "", fmt.Errorf("no end of run after %d ms", d)
	case <-ss.srv.done:
		return "", net.ErrClosed
	}
}

func (ss *session) send(i, n, size, to string) error {
	sn, err := ss.node(i)
	if err != nil {
		return err
	}
	k, err := number(n, 0, MaxRun)
	if err != nil {
		return protoErr("%v", err)
	}
	sz, err := number(size, 1, MaxSize)
	if err != nil {
		return protoErr("%v", err)
	}
	// The link may be a moment younger on this side than on the client's.
	var dst cluster.Remote
	found := false
	for deadline := time.Now().Add(5 * time.Second); !found; {
		for _, r := range sn.n.Remotes() {
			if r.Addr() == to {
				dst, found = r, true
			}
		}
		if !found {
			if time.Now().After(deadline) {
				return fmt.Errorf("node has no remote %q", to)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Bounded like a WAIT, and by the server's Close: the session's one
	// goroutine is busy here and would not see its conn end.
	ctx, cancel := context.WithTimeout(ss.srv.ctx, MaxWait)
	defer cancel()
	payload := make([]byte, sz)
	for range k {
		if err := sn.n.SendContext(ctx, dst, payload); err != nil {
			return err
		}
	}
	return sn.n.SendContext(ctx, dst, nil)
}
