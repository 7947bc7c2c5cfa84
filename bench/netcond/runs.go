package netcond

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/peerkit/peerkit/bench"
	"github.com/peerkit/peerkit/cluster"
)

// The measurements that need more than one endpoint pair: sized
// throughput runs, round trips beside a bulk transfer, and the removal of
// a silent host.

// sized runs throughput runs of doubling length until one lasts d/4
// (beyond what the socket buffers hide), then one of about d at its rate;
// received says how many payloads arrived in the last run, which must be
// all (a link that dropped its queue would look fast).
func sized(p *bench.Pair, size int, d time.Duration, received func() int) (bench.Rate, error) {
	run := func(n int) (bench.Rate, error) {
		r, err := bench.Throughput(p, size, n)
		if err != nil {
			return bench.Rate{}, err
		}
		if got := received(); got != n {
			return bench.Rate{}, fmt.Errorf("%d of %d payloads arrived", got, n)
		}
		return r, nil
	}
	n := max(8, (64<<10)/size)
	for {
		r, err := run(n)
		if err != nil || r.Elapsed >= d {
			return r, err
		}
		if r.Elapsed >= d/4 || n >= 100_000_000 {
			return run(min(max(int(r.MsgsPerSec()*d.Seconds()), n), 100_000_000))
		}
		n *= 2
	}
}

// hol times small round trips while a bulk transfer runs from the same
// node: first to another remote (on the same host as the bulk's), then to
// the bulk's own remote.
func hol(g *rig, plan Plan, res *Result) error {
	if err := g.cl.mode(0, plan.Small); err != nil {
		return err
	}
	if err := g.cl.mode(1, plan.Small); err != nil {
		return err
	}
	stop := make(chan struct{})
	sent := make(chan error, 1)
	start := time.Now()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { // owned by hol: it ends at stop, or on an error when the rig closes
		payload := make([]byte, plan.Bulk)
		for {
			select {
			case <-stop:
				sent <- g.a.Send(g.b[0], nil) // the end of the bulk run
				return
			default:
			}
			if err := g.a.Send(g.b[0], payload); err != nil {
				sent <- err
				return
			}
		}
	})
	// First to b[1] (another remote), then to b[0] (the bulk's own).
	dsts := [2][2]*time.Duration{{&res.HOLOther50, &res.HOLOther99}, {&res.HOLSame50, &res.HOLSame99}}
	var err error
	bulkBytes := 0
	for i, dst := range dsts {
		var ds []time.Duration
		ds, err = bench.RoundTripsFor(bench.NewPair(g.end(1-i), echoSink{}), plan.Small, plan.Duration)
		if err == nil {
			var b int
			_, b, err = g.cl.wait(1-i, time.Minute)
			if i == 1 {
				bulkBytes += b // the bulk so far arrived before this run's end
			}
		}
		if err != nil {
			break
		}
		*dst[0], *dst[1] = bench.Percentile(ds, 0.5), bench.Percentile(ds, 0.99)
	}
	close(stop)
	if serr := <-sent; err == nil && serr != nil {
		err = fmt.Errorf("bulk: %w", serr)
	}
	if err == nil {
		var b int
		_, b, err = g.cl.wait(0, time.Minute)
		bulkBytes += b
		res.HOLBulk = bench.Rate{Msgs: bulkBytes / plan.Bulk, Size: plan.Bulk, Elapsed: time.Since(start)}
	}
	return err
}

// removal starts a fast-profile server node and a client node linked to
// it, silences the server's, and times until the client removes it.
func removal(ctx context.Context, cl *client, tr string) (time.Duration, string, string) {
	addrs, err := cl.nodes(tr, 1, "fast")
	if err != nil {
		return 0, "", "setup: " + err.Error()
	}
	defer cl.do(time.Minute, "CLOSE")
	nt, err := bench.NewNet(tr)
	if err != nil {
		return 0, "", err.Error()
	}
	defer nt.Close()
	t, err := nt.Transport()
	if err != nil {
		return 0, "", err.Error()
	}
	opts := append([]cluster.Option{cluster.WithTransport(t)}, profiles["fast"]...)
	a, err := cluster.New(net.JoinHostPort(cl.localHost(), "0"), opts...)
	if err != nil {
		return 0, "", err.Error()
	}
	defer a.Close()
	gone := make(chan struct{})
	var once sync.Once
	a.RemoteRemoved(func(r cluster.Remote) {
		if r.Addr() == addrs[0] {
			once.Do(func() { close(gone) })
		}
	})
	// A lost SYN costs a second, which is this profile's dial timeout:
	// under loss, a dial may need another try.
	for try := 1; ; try++ {
		err := a.Add(addrs[0])
		if err == nil {
			break
		}
		if try == 5 || ctx.Err() != nil {
			return 0, "", "setup: " + err.Error()
		}
	}
	v, err := cl.do(time.Minute, "SILENCE")
	if err != nil {
		return 0, "", err.Error()
	}
	start := time.Now()
	how := ""
	if len(v) > 0 {
		how = v[0]
	}
	defer cl.do(time.Minute, "UNSILENCE")
	select {
	case <-gone:
		return time.Since(start), how, ""
	case <-time.After(30 * time.Second):
		return 0, how, "not removed after 30s"
	case <-ctx.Done():
		return 0, how, ctx.Err().Error()
	}
}
