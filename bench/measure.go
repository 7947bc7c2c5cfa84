package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/transport"
)

// Sizes returns the payload sizes of the throughput comparison.
func Sizes() []int { return []int{64, 1 << 10, 64 << 10} }

// SizeName names a payload size for benchmark names and tables.
func SizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// Rate is the result of one one-way throughput run.
type Rate struct {
	Msgs    int
	Size    int
	Elapsed time.Duration
}

// MsgsPerSec is messages per second.
func (r Rate) MsgsPerSec() float64 { return float64(r.Msgs) / r.Elapsed.Seconds() }

// MBPerSec is payload megabytes (10^6 bytes) per second.
func (r Rate) MBPerSec() float64 { return r.MsgsPerSec() * float64(r.Size) / 1e6 }

// Throughput sends n payloads of size bytes from p.A to p.B, then an empty
// one that ends the run, and times until p.B has received them all.
func Throughput(p *Pair, size, n int) (Rate, error) {
	payload := make([]byte, size)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		for {
			k, err := p.B.Recv()
			if err != nil || k == 0 {
				done <- err
				return
			}
		}
	}()
	var err error
	for i := 0; i < n && err == nil; i++ {
		err = p.A.Send(payload)
	}
	if err == nil {
		err = p.A.Send(nil)
	}
	if err == nil {
		err = p.A.Flush()
	}
	if err != nil {
		return Rate{}, err
	}
	if err := <-done; err != nil {
		return Rate{}, err
	}
	return Rate{Msgs: n, Size: size, Elapsed: time.Since(start)}, nil
}

// ThroughputFor runs Throughput for about d: a short warm-up run sizes
// the measured one.
func ThroughputFor(p *Pair, size int, d time.Duration) (Rate, error) {
	n0 := max(200, (4<<20)/size)
	r, err := Throughput(p, size, n0)
	if err != nil {
		return r, err
	}
	n := int(r.MsgsPerSec() * d.Seconds())
	n = min(max(n, n0), 200_000_000)
	return Throughput(p, size, n)
}

// RoundTrips times n ping-pongs of a size-byte payload: p.A sends, p.B
// echoes, p.A receives. It returns the round-trip times, sorted.
func RoundTrips(p *Pair, size, n int) ([]time.Duration, error) {
	return roundTrips(p, size, n, 0)
}

// RoundTripsFor times ping-pongs for about d (at most a million).
func RoundTripsFor(p *Pair, size int, d time.Duration) ([]time.Duration, error) {
	return roundTrips(p, size, 1_000_000, d)
}

func roundTrips(p *Pair, size, n int, d time.Duration) ([]time.Duration, error) {
	payload := make([]byte, size)
	done := make(chan error, 1)
	go func() {
		for {
			k, err := p.B.Recv()
			if err == nil && k > 0 {
				if err = p.B.Send(payload[:k]); err == nil {
					err = p.B.Flush()
				}
			}
			if err != nil || k == 0 {
				done <- err
				return
			}
		}
	}()
	rtts := make([]time.Duration, 0, min(n, 1<<16))
	start := time.Now()
	var err error
	for i := 0; i < n && err == nil; i++ {
		t0 := time.Now()
		if err = p.A.Send(payload); err == nil {
			if err = p.A.Flush(); err == nil {
				_, err = p.A.Recv()
			}
		}
		rtts = append(rtts, time.Since(t0))
		if d > 0 && t0.Sub(start) > d {
			break
		}
	}
	if err == nil {
		if err = p.A.Send(nil); err == nil {
			err = p.A.Flush()
		}
	}
	if err == nil {
		err = <-done
	}
	slices.Sort(rtts)
	return rtts, err
}

// Percentile returns the q-quantile (0..1) of sorted durations.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

// meshWatch reports when every one of n nodes has a link to all others,
// as seen through RemoteChanged callbacks (what an application sees).
type meshWatch struct {
	full atomic.Int32
	done chan struct{}
	once sync.Once
}

func watchMesh(nodes []*cluster.Node) *meshWatch {
	w := &meshWatch{done: make(chan struct{})}
	want := len(nodes) - 1
	for _, n := range nodes {
		var was bool // callbacks of one node run one at a time
		n.RemoteChanged(func(rs []cluster.Remote) {
			is := len(rs) == want
			switch {
			case is && !was:
				if int(w.full.Add(1)) == len(nodes) {
					w.once.Do(func() { close(w.done) })
				}
			case was && !is:
				w.full.Add(-1)
			}
			was = is
		})
	}
	return w
}

// clusterOptions returns the options of every node of the cluster-level
// measurements that need failure detection (short, as in the demo).
func clusterOptions() []cluster.Option {
	return []cluster.Option{
		cluster.WithHealthyInterval(100 * time.Millisecond),
		cluster.WithNetworkTimeout(time.Second),
		cluster.WithReconnectInterval(100 * time.Millisecond),
		cluster.WithMaxReconnectInterval(time.Second),
	}
}

// startNodes starts n nodes of nt.
func startNodes(nt *Net, n int, opts ...cluster.Option) ([]*cluster.Node, func(), error) {
	nodes := make([]*cluster.Node, 0, n)
	closeAll := func() {
		var wg sync.WaitGroup
		for _, nd := range nodes {
			wg.Go(func() { nd.Close() })
		}
		wg.Wait()
	}
	for range n {
		nd, err := nt.NewNode(opts...)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		nodes = append(nodes, nd)
	}
	return nodes, closeAll, nil
}

// ChainToMesh starts n nodes of the named transport, then times a chain
// of Add calls (node i adds node i-1, one after the other) until every
// node has a link to every other one.
func ChainToMesh(name string, n int) (time.Duration, error) {
	nt, err := NewNet(name)
	if err != nil {
		return 0, err
	}
	defer nt.Close()
	nodes, closeAll, err := startNodes(nt, n)
	if err != nil {
		return 0, err
	}
	defer closeAll()
	w := watchMesh(nodes)
	start := time.Now()
	for i := 1; i < n; i++ {
		if err := nodes[i].Add(nodes[i-1].AdvertiseAddr()); err != nil {
			return 0, fmt.Errorf("add %d→%d: %w", i, i-1, err)
		}
	}
	select {
	case <-w.done:
		return time.Since(start), nil
	case <-time.After(30 * time.Second):
		return 0, fmt.Errorf("bench: %d nodes: no full mesh after 30s", n)
	}
}

// LinkSetup times n links of the named transport, each from a new node's
// Add (its dial, the handshake and the first views) until its first
// message has reached the other node's Inbox, and returns the times,
// sorted. Making the new node and closing it are not timed.
func LinkSetup(name string, n int) ([]time.Duration, error) {
	nt, err := NewNet(name)
	if err != nil {
		return nil, err
	}
	defer nt.Close()
	b, err := nt.NewNode()
	if err != nil {
		return nil, err
	}
	defer b.Close()
	payload := []byte("first")
	removed := make(chan struct{}, 1)
	b.RemoteRemoved(func(cluster.Remote) {
		select {
		case removed <- struct{}{}:
		default:
		}
	})
	var ds []time.Duration
	for range n {
		a, err := nt.NewNode()
		if err != nil {
			return nil, err
		}
		start := time.Now()
		err = a.Add(b.AdvertiseAddr())
		if err == nil {
			err = a.Send(a.Remotes()[0], payload)
		}
		if err == nil {
			select {
			case <-b.Inbox:
			case <-time.After(10 * time.Second):
				err = errors.New("bench: no first message after 10s")
			}
		}
		d := time.Since(start)
		a.Close()
		if err != nil {
			return nil, fmt.Errorf("link setup over %s: %w", name, err)
		}
		ds = append(ds, d)
		// b removes a (its goodbye) before the next one dials.
		select {
		case <-removed:
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("link setup over %s: the closed node was not removed after 10s", name)
		}
	}
	slices.Sort(ds)
	return ds, nil
}

// Death kinds.
const (
	Killed    = "killed"    // every conn of the victim closed at once (a killed process)
	BlackHole = "blackhole" // the victim goes silent (memory transport only)
)

// DetectDeath starts n nodes of the named transport in a full mesh (with
// clusterOptions), makes the last one die as kind says, and times until
// every other node has removed it.
func DetectDeath(name, kind string, n int) (time.Duration, error) {
	nt, err := NewNet(name)
	if err != nil {
		return 0, err
	}
	defer nt.Close()
	if kind == BlackHole && nt.Memory() == nil {
		return 0, errors.New("bench: a black hole needs the memory transport")
	}
	var kill func()
	var nodes []*cluster.Node
	closeAll := func() {
		var wg sync.WaitGroup
		for _, nd := range nodes {
			wg.Go(func() { nd.Close() })
		}
		wg.Wait()
	}
	defer func() { closeAll() }()
	for i := range n {
		tr, err := nt.Transport()
		if err != nil {
			return 0, err
		}
		if i == n-1 && nt.Memory() == nil {
			k := &killable{Transport: tr}
			tr, kill = k, k.kill
		}
		opts := append([]cluster.Option{cluster.WithTransport(tr)}, clusterOptions()...)
		nd, err := cluster.New(nt.ListenAddr(), opts...)
		if err != nil {
			return 0, err
		}
		nodes = append(nodes, nd)
	}
	victim := nodes[n-1].AdvertiseAddr()
	switch {
	case kind == BlackHole:
		kill = func() { nt.Memory().BlackHole(victim) }
	case nt.Memory() != nil:
		kill = func() { nt.Memory().Kill(victim) }
	}
	for i := 1; i < n; i++ {
		if err := nodes[i].Add(nodes[0].AdvertiseAddr()); err != nil {
			return 0, err
		}
	}
	if err := WaitMesh(10*time.Second, nodes...); err != nil {
		return 0, err
	}
	var left atomic.Int32
	left.Store(int32(n - 1))
	gone := make(chan struct{})
	for _, nd := range nodes[:n-1] {
		nd.RemoteRemoved(func(r cluster.Remote) {
			if r.Addr() == victim && left.Add(-1) == 0 {
				close(gone)
			}
		})
	}
	start := time.Now()
	kill()
	select {
	case <-gone:
		return time.Since(start), nil
	case <-time.After(30 * time.Second):
		return 0, errors.New("bench: victim not removed after 30s")
	}
}

// killable wraps a transport so that kill closes every conn and listener
// it made at once, as the kernel does when a process dies, and fails
// every later dial.
type killable struct {
	transport.Transport
	mu    sync.Mutex
	dead  bool
	conns []net.Conn
	lns   []net.Listener
}

func (k *killable) track(c net.Conn) net.Conn {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dead {
		c.Close()
		return nil
	}
	k.conns = append(k.conns, c)
	return c
}

func (k *killable) Listen(addr string) (net.Listener, error) {
	ln, err := k.Transport.Listen(addr)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.lns = append(k.lns, ln)
	k.mu.Unlock()
	return killableListener{ln, k}, nil
}

func (k *killable) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := k.Transport.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if c = k.track(c); c == nil {
		return nil, net.ErrClosed
	}
	return c, nil
}

func (k *killable) kill() {
	k.mu.Lock()
	k.dead = true
	cs, ls := k.conns, k.lns
	k.conns, k.lns = nil, nil
	k.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	for _, c := range cs {
		c.Close()
	}
}

type killableListener struct {
	net.Listener
	k *killable
}

func (l killableListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if c = l.k.track(c); c != nil {
			return c, nil
		}
	}
}

// Allocs is the allocations per message of the cluster's data path.
type Allocs struct {
	SendAllocs, SendBytes float64 // Send and the link's writer, in package cluster
	RecvAllocs, RecvBytes float64 // the link's reader, in package cluster
	// Made inside the transport's Write and Read (the conn's own cost,
	// which the raw baseline pays too), on the send and receive paths.
	SendTransportAllocs, RecvTransportAllocs float64
	OtherAllocs                              float64 // anything else in the process meanwhile
}

// MeasureAllocs sends messages of size bytes from one node to another on
// the named transport and attributes every allocation made meanwhile (with
// runtime.MemProfileRate = 1) to the send path, the receive path or
// neither, by its stack. A garbage collection, which the profile needs,
// empties the buffer pools; so two windows, of n and 2n messages, start
// alike, and their difference is the steady state of n messages.
func MeasureAllocs(name string, size, n int) (Allocs, error) {
	p, err := ClusterPair(name)
	if err != nil {
		return Allocs{}, err
	}
	defer p.Close()
	if _, err := Throughput(p, size, 10_000); err != nil { // warm up
		return Allocs{}, err
	}
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	for range 1 << 12 { // the next sample point was drawn at the old rate
		sink = make([]byte, 1<<10)
	}
	runtime.KeepAlive(sink)
	sink = nil
	window := func(k int) (map[[32]uintptr]memCount, error) {
		before := memProfile()
		if _, err := Throughput(p, size, k); err != nil {
			return nil, err
		}
		after := memProfile()
		for stk, c := range after {
			c.objs -= before[stk].objs
			c.bytes -= before[stk].bytes
			after[stk] = c
		}
		return after, nil
	}
	one, err := window(n)
	if err != nil {
		return Allocs{}, err
	}
	two, err := window(2 * n)
	if err != nil {
		return Allocs{}, err
	}
	var a Allocs
	for stk, c := range two {
		objs := float64(c.objs-one[stk].objs) / float64(n)
		bytes := float64(c.bytes-one[stk].bytes) / float64(n)
		a.add(classify(stk), objs, bytes)
	}
	for stk, c := range one { // stacks only the first window saw
		if _, ok := two[stk]; !ok {
			a.add(classify(stk), -float64(c.objs)/float64(n), -float64(c.bytes)/float64(n))
		}
	}
	return a, nil
}

func (a *Allocs) add(class string, objs, bytes float64) {
	switch class {
	case "send":
		a.SendAllocs += objs
		a.SendBytes += bytes
	case "recv":
		a.RecvAllocs += objs
		a.RecvBytes += bytes
	case "send-transport":
		a.SendTransportAllocs += objs
	case "recv-transport":
		a.RecvTransportAllocs += objs
	default:
		a.OtherAllocs += objs
	}
}

var sink []byte

type memCount struct{ objs, bytes int64 }

func memProfile() map[[32]uintptr]memCount {
	for range 3 { // the profile is published at the end of a GC cycle
		runtime.GC()
	}
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	m := make(map[[32]uintptr]memCount, len(recs))
	for _, r := range recs {
		c := m[r.Stack0]
		c.objs += r.AllocObjects
		c.bytes += r.AllocBytes
		m[r.Stack0] = c
	}
	return m
}

func classify(stk [32]uintptr) string {
	pcs := stk[:]
	if i := slices.Index(pcs, 0); i >= 0 {
		pcs = pcs[:i]
	}
	frames := runtime.CallersFrames(pcs)
	suffix := "" // innermost first: was the allocation made inside a conn?
	for {
		f, more := frames.Next()
		switch {
		case suffix == "" && isTransportFunc(f.Function):
			suffix = "-transport"
		case strings.Contains(f.Function, "cluster.(*link).readLoop"):
			return "recv" + suffix
		case strings.Contains(f.Function, "cluster.(*Node).SendContext"),
			strings.Contains(f.Function, "cluster.(*Node).Broadcast"),
			strings.Contains(f.Function, "cluster.(*link).writeLoop"):
			return "send" + suffix
		}
		if !more {
			return "other"
		}
	}
}

func isTransportFunc(fn string) bool {
	for _, p := range []string{"peerkit/transport/", "crypto/tls.", "quic-go", "yamux", "net.(*conn)", "internal/poll."} {
		if strings.Contains(fn, p) {
			return true
		}
	}
	return false
}

// Idle is the cost of one idle remote.
type Idle struct {
	Remotes             int     // remote entries measured (each node's view of each other)
	BytesPerRemote      float64 // Go heap and goroutine stacks
	GoroutinesPerRemote float64
}

// MeasureIdle starts k+1 nodes of the named transport, measures the heap,
// stacks and goroutines, joins them into a full mesh, waits for it to
// settle, and measures again: the difference per remote entry (each of the
// k+1 nodes has k remotes) is the cost of an idle remote, both ends of its
// conn included once.
func MeasureIdle(name string, k int) (Idle, error) {
	nt, err := NewNet(name)
	if err != nil {
		return Idle{}, err
	}
	defer nt.Close()
	nodes, closeAll, err := startNodes(nt, k+1)
	if err != nil {
		return Idle{}, err
	}
	defer closeAll()
	time.Sleep(50 * time.Millisecond)
	m0, g0 := memNow()
	for _, nd := range nodes[1:] {
		if err := nd.Add(nodes[0].AdvertiseAddr()); err != nil {
			return Idle{}, err
		}
	}
	if err := WaitMesh(30*time.Second, nodes...); err != nil {
		return Idle{}, err
	}
	time.Sleep(300 * time.Millisecond) // handshake goroutines end
	m1, g1 := memNow()
	r := (k + 1) * k
	return Idle{
		Remotes:             r,
		BytesPerRemote:      float64(m1-m0) / float64(r),
		GoroutinesPerRemote: float64(g1-g0) / float64(r),
	}, nil
}

func memNow() (int64, int) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse), runtime.NumGoroutine()
}
