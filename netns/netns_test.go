//go:build netns

package netns

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// Bounds on every wait: the tests always stop by themselves.
const (
	meshWait  = 20 * time.Second // a full mesh after joins, a lifted cut or a restart
	burstWait = 30 * time.Second // every message of a burst delivered
	// detectLimit is the bound for noticing a silently cut host: the
	// network timeout plus one heartbeat. detectSlack covers scheduling on a
	// busy 2-core machine (the callback that timestamps the removal runs on
	// the node's event goroutine, and the nft command that makes the cut
	// takes a few milliseconds).
	detectLimit = netTimeout + healthy
	detectSlack = 150 * time.Millisecond

	lossPct   = 5
	rateLimit = "8mbit" // tbf on one host in the clean runs
	rateBits  = 8e6
	rateCount = 32       // messages h1 sends to each peer through the tbf
	rateSize  = 16 << 10 // bytes each
)

// Each node broadcasts burstCount messages of burstSize bytes per burst to
// every other node, all nodes at once. PEERKIT_NETNS_BURST=COUNTxSIZE sets
// it for every transport.
var burstCount, burstSize = 1000, 1024

func init() {
	if s := os.Getenv("PEERKIT_NETNS_BURST"); s != "" {
		if _, err := fmt.Sscanf(s, "%dx%d", &burstCount, &burstSize); err != nil {
			panic("PEERKIT_NETNS_BURST wants COUNTxSIZE, e.g. 1000x1024")
		}
	}
}

func burstFor(string) (count, size int) {
	return burstCount, burstSize
}

// figures is what one scenario measured, for the summary table.
type figures struct {
	transport, cond string
	converge        time.Duration
	burst           time.Duration
	cutMin, cutMax  time.Duration
	cutBack         time.Duration
	downMax         time.Duration // the switch port unplugged (clean runs)
	killMin         time.Duration
	killMax         time.Duration
	restartBack     time.Duration
	goodput         float64 // bit/s through the tbf, 0 if not measured
	flaps           int     // removals nobody caused
	lossSeen        float64 // % of packets the loss rules dropped
	addRetries      int     // Adds of the chain that failed and were retried
	done            bool    // the scenario ran to its end
}

func TestRealNetwork(t *testing.T) {
	e := newEnv(t)
	transports := []string{"tcp", "quic", "mux"}
	if s := os.Getenv("PEERKIT_NETNS_TRANSPORTS"); s != "" {
		transports = strings.Split(s, ",")
	}
	var all []*figures
	start := time.Now()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			for _, lossy := range []bool{false, true} {
				cond := "clean"
				if lossy {
					cond = fmt.Sprintf("loss%d", lossPct)
				}
				if c := os.Getenv("PEERKIT_NETNS_CONDS"); c != "" && !slices.Contains(strings.Split(c, ","), cond) {
					continue
				}
				f := &figures{transport: tr, cond: cond}
				all = append(all, f)
				t.Run(cond, func(t *testing.T) { scenario(t, e, f, lossy) })
			}
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "real-network figures (healthy %v, network timeout %v, limit for a silent cut %v; loss %d%% drops each way on every host", healthy, netTimeout, detectLimit, lossPct)
	if e.netem {
		b.WriteString(", plus 50 ms netem delay")
	}
	b.WriteString("):\n")
	fmt.Fprintf(&b, "%-5s %-6s %9s %7s %9s %19s %9s %9s %19s %9s %10s %5s %7s\n",
		"", "", "converge", "retries", "burst", "cut detect min-max", "cut back", "unplug", "kill detect min-max", "restart", "tbf "+rateLimit, "flaps", "dropped")
	for _, f := range all {
		gp := "-"
		if f.goodput > 0 {
			gp = fmt.Sprintf("%.2f Mb/s", f.goodput/1e6)
		}
		if !f.done {
			fmt.Fprintf(&b, "%-5s %-6s (did not finish: see the errors above)\n", f.transport, f.cond)
			continue
		}
		down, dropped := "-", "-"
		if f.downMax > 0 {
			down = ms(f.downMax).String()
		}
		if f.lossSeen > 0 {
			dropped = fmt.Sprintf("%.1f%%", f.lossSeen)
		}
		fmt.Fprintf(&b, "%-5s %-6s %9v %7d %9v %9v-%-9v %9v %9s %9v-%-9v %9v %10s %5d %7s\n", f.transport, f.cond,
			ms(f.converge), f.addRetries, ms(f.burst), ms(f.cutMin), ms(f.cutMax), ms(f.cutBack), down,
			ms(f.killMin), ms(f.killMax), ms(f.restartBack), gp, f.flaps, dropped)
	}
	fmt.Fprintf(&b, "total %v", time.Since(start).Round(100*time.Millisecond))
	t.Log(b.String())
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// scenario runs every check over one transport, on a clean network or with
// loss on every host: a chain of joins converges to a full mesh, bursts
// arrive complete and in order, a silently cut host is removed in time and
// comes back, a killed node is removed and re-added after its restart.
func scenario(t *testing.T, e *env, f *figures, lossy bool) {
	tr := f.transport
	e.clearFaults()
	t.Cleanup(e.clearFaults)
	if lossy {
		for i := range numHosts {
			e.setLoss(t, i, lossPct)
			if e.netem {
				e.setDelay(t, i)
			}
		}
		if !e.netem {
			t.Logf("netem missing: no 50 ms delay added (loss only)")
		}
	}
	procs := make([]*proc, numHosts)
	for i := range procs {
		procs[i] = e.start(t, i, tr)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p.alive() {
				p.kill()
			}
		}
		if t.Failed() {
			e.dumpLogs(t, f.transport)
		}
	})

	// 1. A chain of joins (h2 adds h1, h3 adds h2, ...) becomes a full mesh.
	t0 := time.Now()
	f.addRetries = joinChain(t, procs)
	f.converge = waitMesh(t, procs, t0, "the chain of joins")
	t.Logf("%s %s: full mesh %v after the chain of joins", tr, f.cond, ms(f.converge))
	checkAsked(t, procs)

	// 2. Every node broadcasts a burst; everything arrives, in order.
	count, size := burstFor(tr)
	marks := eventMarks(procs)
	f.burst = runBurst(t, procs, "b1", count, size)
	f.flaps += flaps(t, procs, marks, "", "the first burst")
	if !t.Failed() {
		t.Logf("%s %s: %d×%d messages of %d B delivered complete and in order in %v",
			tr, f.cond, numHosts*(numHosts-1), count, size, ms(f.burst))
	}

	// 3. Cut h5 silently: the others notice within the network timeout
	// plus a heartbeat, and take it back once the cut is lifted.
	victim := numHosts - 1
	marks = eventMarks(procs)
	tCut := time.Now()
	e.cut(t, victim)
	det := waitRemoved(t, procs, victim, marks, tCut, detectLimit+5*time.Second, "the cut")
	f.cutMin, f.cutMax = slices.Min(det), slices.Max(det)
	t.Logf("%s %s: silent cut of h5 detected by h1..h4 after %v (limit %v)", tr, f.cond, msList(det), detectLimit)
	if f.cutMax > detectLimit+detectSlack {
		t.Errorf("a silent cut was detected after %v, over the network timeout plus a heartbeat (%v, +%v slack)", ms(f.cutMax), detectLimit, detectSlack)
	}
	if !lossy && f.cutMin < netTimeout-2*healthy-50*time.Millisecond {
		t.Errorf("a silent cut was detected after only %v: the cut was not silent (or the timeout is not honoured)", ms(f.cutMin))
	}
	// h5, alone behind its cut, removes everyone too.
	waitFor(t, detectLimit+5*time.Second, "h5 to remove everyone behind its cut", func() bool {
		return len(procs[victim].memberSet()) == 0
	})
	tUncut := time.Now()
	e.uncut(t, victim)
	waitMesh(t, procs, tUncut, "the cut was lifted")
	f.cutBack = lastChange(procs).Sub(tUncut)
	t.Logf("%s %s: h5 back in the full mesh %v after the cut was lifted", tr, f.cond, ms(f.cutBack))
	f.flaps += flaps(t, procs, marks, procs[victim].addr, "the cut")

	// 3b. Unplug h5 at the switch (ip link set down on its bridge port):
	// silent as well for the others. Clean runs only, to save time.
	if !lossy {
		marks = eventMarks(procs)
		port := fmt.Sprintf("h%d", victim+1)
		tDown := time.Now()
		e.must(t, "ip", "-n", e.sw, "link", "set", port, "down")
		det := waitRemoved(t, procs, victim, marks, tDown, detectLimit+5*time.Second, "unplugging it")
		f.downMax = slices.Max(det)
		t.Logf("%s %s: h5 unplugged at the switch (link down) detected by h1..h4 after %v", tr, f.cond, msList(det))
		if f.downMax > detectLimit+detectSlack {
			t.Errorf("an unplugged host was detected after %v, over %v", ms(f.downMax), detectLimit+detectSlack)
		}
		waitFor(t, detectLimit+5*time.Second, "h5 to remove everyone while unplugged", func() bool {
			return len(procs[victim].memberSet()) == 0
		})
		tUp := time.Now()
		e.must(t, "ip", "-n", e.sw, "link", "set", port, "up")
		waitMesh(t, procs, tUp, "h5 was plugged in again")
		t.Logf("%s %s: h5 back in the full mesh %v after it was plugged in again", tr, f.cond, ms(lastChange(procs).Sub(tUp)))
		f.flaps += flaps(t, procs, marks, procs[victim].addr, "the unplugging")
	}

	// 4. Kill h5 (SIGKILL): removed, then re-added once restarted on the same
	// address, by the others' redials alone (it joins nobody).
	marks = eventMarks(procs)
	old := procs[victim].instance
	tKill := time.Now()
	procs[victim].kill()
	det = waitRemoved(t, procs[:victim], victim, marks, tKill, detectLimit+5*time.Second, "the kill")
	f.killMin, f.killMax = slices.Min(det), slices.Max(det)
	t.Logf("%s %s: SIGKILL of h5 detected by h1..h4 after %v", tr, f.cond, msList(det))
	if f.killMax > detectLimit+detectSlack {
		t.Errorf("a killed node was detected after %v, over %v", ms(f.killMax), detectLimit+detectSlack)
	}
	tRestart := time.Now()
	procs[victim] = e.start(t, victim, tr)
	if procs[victim].instance == old {
		t.Fatalf("restarted h5 kept its instance id %s", old)
	}
	waitMesh(t, procs, tRestart, "h5 restarted")
	f.restartBack = lastChange(procs).Sub(tRestart)
	t.Logf("%s %s: restarted h5 (new instance) back in the full mesh %v after its start", tr, f.cond, ms(f.restartBack))
	f.flaps += flaps(t, procs[:victim], marks, procs[victim].addr, "the kill")

	// 5. After all that, every link still carries everything, in order.
	marks = eventMarks(procs)
	runBurst(t, procs, "b2", count/4, size)
	f.flaps += flaps(t, procs, marks, "", "the second burst")

	// 6. Bandwidth: h1's egress through a token bucket (clean runs only).
	if !lossy {
		marks = eventMarks(procs)
		e.setRate(t, 0, rateLimit)
		f.goodput = rateBurst(t, procs)
		t.Logf("%s: h1 → 4 peers through tbf %s: %.2f Mb/s of payload, complete and in order", tr, rateLimit, f.goodput/1e6)
		if f.goodput > 1.25*rateBits {
			t.Errorf("goodput %.2f Mb/s above the tbf rate %s: the qdisc did not act", f.goodput/1e6, rateLimit)
		}
		f.flaps += flaps(t, procs, marks, "", "the rate-limited burst")
	}

	if lossy {
		var dropped, passed int
		for i := range numHosts {
			d, p := e.lossCounters(i)
			dropped += d
			passed += p
		}
		f.lossSeen = float64(dropped) / float64(max(dropped+passed, 1)) * 100
		t.Logf("%s %s: the loss rules dropped %d of %d packets (%.1f%%) on the hosts' ingress and egress", tr, f.cond, dropped, dropped+passed, f.lossSeen)
	}
	for _, p := range procs {
		p.stop()
	}
	f.done = true
}

// joinChain makes h2 Add h1, h3 Add h2, and so on, all at once, and waits
// for the answers. An Add that fails (under loss a SYN and its retransmit
// can both be lost within the network timeout) is retried, as an
// application would; it returns how many retries there were.
func joinChain(t *testing.T, procs []*proc) int {
	t.Helper()
	const attempts = 5
	type result struct {
		retries int
		err     error
	}
	results := make(chan result, len(procs))
	for i := 1; i < len(procs); i++ {
		p, to := procs[i], procs[i-1].addr
		go func() {
			var r result
			for a := 1; ; a++ {
				p.send("add " + to)
				select {
				case l := <-p.replies["add"]:
					if strings.HasPrefix(l, "ok ") {
						results <- r
						return
					}
					if a == attempts {
						r.err = fmt.Errorf("%s: %d Adds failed, the last: %s", p.name, attempts, l)
						results <- r
						return
					}
					r.retries++
					t.Logf("%s: Add failed, retrying: %s", p.name, l)
				case <-time.After(3 * netTimeout):
					r.err = fmt.Errorf("%s: no answer to add %s within %v", p.name, to, 3*netTimeout)
					results <- r
					return
				}
			}
		}()
	}
	retries := 0
	for i := 1; i < len(procs); i++ {
		r := <-results
		retries += r.retries
		if r.err != nil {
			t.Error(r.err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return retries
}

// waitMesh waits until every node has every other as a remote, each with
// the instance it runs now, and returns how long after since the last
// membership change that made it happened.
func waitMesh(t *testing.T, procs []*proc, since time.Time, after string) time.Duration {
	t.Helper()
	waitFor(t, meshWait, "a full mesh after "+after, func() bool { return fullMesh(procs) })
	return lastChange(procs).Sub(since)
}

func fullMesh(procs []*proc) bool {
	for _, p := range procs {
		p.mu.Lock()
		ok := len(p.members) == len(procs)-1
		for _, q := range procs {
			if q != p && p.members[q.addr] != q.instance {
				ok = false
			}
		}
		p.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

func lastChange(procs []*proc) time.Time {
	var last time.Time
	for _, p := range procs {
		if at := p.lastEvent(); at.After(last) {
			last = at
		}
	}
	return last
}

// checkAsked confirms the mesh with each node's own Remotes().
func checkAsked(t *testing.T, procs []*proc) {
	t.Helper()
	for _, p := range procs {
		got, err := p.askMembers()
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, q := range procs {
			if q != p {
				want = append(want, q.addr)
			}
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: Remotes() = %v, want %v", p.name, got, want)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func eventMarks(procs []*proc) []int {
	m := make([]int, len(procs))
	for i, p := range procs {
		m[i] = p.eventCount()
	}
	return m
}

// waitRemoved waits until every node in procs but the victim has removed
// the victim, and returns how long after t0 each did.
func waitRemoved(t *testing.T, procs []*proc, victim int, marks []int, t0 time.Time, d time.Duration, what string) []time.Duration {
	t.Helper()
	addr := procs[0].e.addr(victim)
	var det []time.Duration
	waitFor(t, d, fmt.Sprintf("h1..h%d to remove h%d after %s", victim, victim+1, what), func() bool {
		det = det[:0]
		for i, p := range procs {
			if p.host == victim {
				continue
			}
			found := false
			for _, ev := range p.eventsSince(marks[i]) {
				if !ev.added && ev.addr == addr {
					det = append(det, ev.at.Sub(t0))
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	})
	return det
}

// flaps counts, and reports as errors, the removals since marks that no
// fault we made explains (those of or by the host at except are explained):
// a healthy link removed for silence is a false detection.
func flaps(t *testing.T, procs []*proc, marks []int, except, during string) int {
	t.Helper()
	n := 0
	for i, p := range procs {
		if p.addr == except {
			continue
		}
		for _, ev := range p.eventsSince(marks[i]) {
			if !ev.added && ev.addr != except {
				n++
				t.Errorf("flap: %s removed %s during %s, though no fault we made touched that link", p.name, ev.addr, during)
			}
		}
	}
	return n
}

// runBurst makes every node broadcast count numbered messages at once and
// checks that every other node gets all of them, in order, exactly once.
func runBurst(t *testing.T, procs []*proc, id string, count, size int) time.Duration {
	t.Helper()
	t0 := time.Now()
	for _, p := range procs {
		p.send(fmt.Sprintf("burst %s %d %d", id, count, size))
	}
	for _, p := range procs {
		select {
		case l := <-p.replies["sent"]:
			if f := strings.Fields(l); len(f) != 4 || f[3] != "0" {
				t.Errorf("%s: %s (Broadcast failed for some messages)", p.name, l)
			}
		case <-time.After(burstWait):
			t.Fatalf("%s did not finish queueing burst %s", p.name, id)
		}
	}
	complete := func() bool {
		for _, p := range procs {
			p.mu.Lock()
			for _, q := range procs {
				if q != p && len(p.recv[id][q.addr]) < count {
					p.mu.Unlock()
					return false
				}
			}
			p.mu.Unlock()
		}
		return true
	}
	deadline := time.Now().Add(burstWait)
	for !complete() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var last time.Time
	for _, p := range procs {
		p.mu.Lock()
		for _, q := range procs {
			if q != p {
				checkSeq(t, p.name, q.name, p.recv[id][q.addr], count)
			}
		}
		if p.recvAt[id].After(last) {
			last = p.recvAt[id]
		}
		p.mu.Unlock()
	}
	return last.Sub(t0)
}

// checkSeq reports seqs that are not exactly 1..count.
func checkSeq(t *testing.T, at, from string, seqs []int, count int) {
	t.Helper()
	for i, s := range seqs {
		if s != i+1 {
			t.Errorf("%s got message %d from %s where %d was due (order or completeness broken; %d received)", at, s, from, i+1, len(seqs))
			return
		}
	}
	if len(seqs) != count {
		t.Errorf("%s got %d of %d messages from %s within %v", at, len(seqs), count, from, burstWait)
	}
}

// rateBurst sends rateCount messages of rateSize from h1 (behind the tbf)
// to everyone and returns the payload goodput in bit/s.
func rateBurst(t *testing.T, procs []*proc) float64 {
	t.Helper()
	const id = "r1"
	src := procs[0]
	t0 := time.Now()
	src.send(fmt.Sprintf("burst %s %d %d", id, rateCount, rateSize))
	deadline := time.Now().Add(burstWait)
	done := func() bool {
		for _, p := range procs[1:] {
			p.mu.Lock()
			n := len(p.recv[id][src.addr])
			p.mu.Unlock()
			if n < rateCount {
				return false
			}
		}
		return true
	}
	for !done() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var last time.Time
	total := 0
	for _, p := range procs[1:] {
		p.mu.Lock()
		checkSeq(t, p.name, src.name, p.recv[id][src.addr], rateCount)
		total += p.bytes[id]
		if p.recvAt[id].After(last) {
			last = p.recvAt[id]
		}
		p.mu.Unlock()
	}
	return float64(total*8) / last.Sub(t0).Seconds()
}

func msList(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = ms(d).String()
	}
	return strings.Join(s, " ")
}
