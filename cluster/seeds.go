package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Seeds: joining a cluster by the addresses or DNS names of some of its
// nodes, in the forms users of Grafana's dskit know.
//
//	host:port                    every A/AAAA record of host (an IP needs none)
//	dns+host:port                the same, said explicitly
//	dnssrv+_service._proto.name  every SRV target of the name, at its port
//
// A Kubernetes headless Service resolves to one A record per ready pod
// (dns+peers.default.svc.cluster.local:7946), or to SRV records naming
// each pod (dnssrv+_gossip._tcp.peers.default.svc.cluster.local).

// Resolver looks up seeds' names. *net.Resolver implements it (and
// net.DefaultResolver is the default).
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// ErrNoSeeds: none of the seeds resolved to an address to dial.
var ErrNoSeeds = errors.New("cluster: no seed resolved to an address")

// resolveSeeds returns the addresses the seeds name, without duplicates,
// in order, and the errors of the seeds that did not resolve.
func resolveSeeds(ctx context.Context, r Resolver, seeds []string) ([]string, []error) {
	var addrs []string
	var errs []error
	add := func(a string) {
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	for _, s := range seeds {
		got, err := resolveSeed(ctx, r, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("seed %q: %w", s, err))
		}
		for _, a := range got {
			add(a)
		}
	}
	return addrs, errs
}

// resolveSeed returns the addresses one seed names.
func resolveSeed(ctx context.Context, r Resolver, seed string) ([]string, error) {
	switch {
	case strings.HasPrefix(seed, "dnssrv+"):
		name := strings.TrimPrefix(seed, "dnssrv+")
		_, srvs, err := r.LookupSRV(ctx, "", "", name)
		if err != nil {
			return nil, err
		}
		var out []string
		var errs []error
		for _, srv := range srvs {
			got, err := lookupHostPort(ctx, r, strings.TrimSuffix(srv.Target, "."), fmt.Sprint(srv.Port), true)
			errs = append(errs, err)
			out = append(out, got...)
		}
		if len(out) == 0 {
			return nil, errors.Join(append(errs, fmt.Errorf("no usable SRV record for %s", name))...)
		}
		return out, nil
	case strings.HasPrefix(seed, "dns+"):
		host, port, err := net.SplitHostPort(strings.TrimPrefix(seed, "dns+"))
		if err != nil {
			return nil, err
		}
		return lookupHostPort(ctx, r, host, port, true)
	}
	host, port, err := net.SplitHostPort(seed)
	if err != nil {
		return nil, err
	}
	return lookupHostPort(ctx, r, host, port, false)
}

// lookupHostPort returns host:port for every address of host. A plain seed
// (strict false) whose host does not resolve is dialled as given: the
// transport may know it (the memory network's names do not resolve).
func lookupHostPort(ctx context.Context, r Resolver, host, port string, strict bool) ([]string, error) {
	if net.ParseIP(host) != nil {
		return []string{net.JoinHostPort(host, port)}, nil
	}
	ips, err := r.LookupHost(ctx, host)
	if err != nil || len(ips) == 0 {
		if !strict {
			return []string{net.JoinHostPort(host, port)}, nil
		}
		if err == nil {
			err = fmt.Errorf("no address for %s", host)
		}
		return nil, err
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip, port))
	}
	return out, nil
}

// Join adds every address the seeds name (see the forms above) and returns
// how many handshakes succeeded; it succeeds (a nil error) as soon as one
// does. The addresses are dialled one after the other, each bounded by ctx
// and the network timeout. An address that is this node itself is
// skipped. If none joins, the error joins every failure, each matching the
// sentinels of Add, or ErrNoSeeds if nothing resolved.
func (n *Node) Join(ctx context.Context, seeds ...string) (int, error) {
	addrs, errs := resolveSeeds(ctx, n.opts.resolver, seeds)
	return n.join(ctx, addrs, errs)
}

// join adds addrs, the addresses seeds resolved to; errs are the seeds'
// resolution errors.
func (n *Node) join(ctx context.Context, addrs []string, errs []error) (int, error) {
	if len(addrs) == 0 {
		return 0, errors.Join(append([]error{ErrNoSeeds}, errs...)...)
	}
	joined := 0
	for _, a := range addrs {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		switch err := n.AddContext(ctx, a); {
		case err == nil:
			joined++
		case errors.Is(err, ErrSelf):
		case errors.Is(err, ErrClosed):
			return joined, err
		default:
			errs = append(errs, err)
		}
	}
	if joined > 0 {
		return joined, nil
	}
	return 0, errors.Join(errs...)
}

// rejoin runs while the node does (WithSeeds): at once, then every rejoin
// interval, it resolves the seeds and joins them while the node knows
// fewer remotes than they resolve to (itself excepted), so that a cluster
// restarted all at once, or a node started before its seeds, converges
// without a person.
func (n *Node) rejoin() {
	// Each round comes first, then the wait: a timer made already due
	// (NewTimer(0)) is run by the goroutine that selects on it, which the
	// race detector does not survive in a synctest bubble, where users test
	// their clusters (internal/racerepro).
	t := time.NewTimer(n.opts.rejoinInterval)
	defer t.Stop()
	for n.ctx.Err() == nil {
		n.rejoinRound()
		t.Reset(n.opts.rejoinInterval)
		select {
		case <-t.C:
		case <-n.ctx.Done():
		}
	}
}

// rejoinRound is one round of rejoin.
func (n *Node) rejoinRound() {
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.rejoinInterval)
	defer cancel()
	addrs, errs := resolveSeeds(ctx, n.opts.resolver, n.opts.seeds)
	others := slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return a == n.self.Addr })
	if len(n.Remotes()) < len(others) || len(addrs) == 0 {
		if k, err := n.join(ctx, addrs, errs); err != nil {
			n.log.Info("rejoining seeds failed; retrying", "err", err, "retry_in", n.opts.rejoinInterval)
		} else {
			n.log.Debug("rejoined seeds", "joined", k)
		}
	}
}
