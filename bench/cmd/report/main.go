// Command report runs peerkit's benchmark comparison and writes a Markdown
// table and an SVG chart of the results.
//
//	go run ./bench/cmd/report                       # everything, about 2 minutes on 2 cores (as root, 12 more for netcond)
//	go run ./bench/cmd/report -transports tcp,memory -sizes 64,1024 -duration 200ms
//	go run ./bench/cmd/report -sections throughput,latency -out /tmp/bench
//	go run ./bench/cmd/report -sections netcond -net-duration 300ms  # network conditions only (root)
//	go run ./bench/cmd/report -serve 10.0.0.2:7700                    # two hosts: on one...
//	go run ./bench/cmd/report -connect 10.0.0.2:7700                  # ...and on the other
//
// Every transport is measured through the cluster layer (Send to Inbox)
// and raw (the same transport's conns with a 4-byte length prefix and the
// same 16 KiB buffering) in the same process, alternating rounds, and the
// median of the rounds is kept: the ratio of the two is what the cluster
// layer costs. The reference baselines (ref-*) use the underlying libraries
// directly.
//
// The network-conditions section (netcond.go, package bench/netcond)
// compares the transports between two network namespaces under packet
// loss and a bandwidth cap, and writes netcond.md and netcond.svg; it needs
// root and says so when it skips. -serve and -connect run the same
// comparison between two machines (remote.go).
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peerkit/peerkit/bench"
)

var sectionNames = []string{"throughput", "latency", "setup", "mesh", "death", "allocs", "idle", "netcond"}

type config struct {
	out        string
	transports []string // transports and references
	sizes      []int
	duration   time.Duration
	rounds     int
	sections   map[string]bool
}

func main() {
	log.SetFlags(0)
	var (
		c          config
		transports = flag.String("transports", strings.Join(append(bench.Transports(), bench.References()...), ","), "comma-separated transports and reference baselines to measure")
		sizes      = flag.String("sizes", "64,1024,65536", "comma-separated payload sizes in bytes for throughput")
		sections   = flag.String("sections", strings.Join(sectionNames, ","), "comma-separated sections to run: "+strings.Join(sectionNames, ", "))
	)
	flag.StringVar(&c.out, "out", filepath.Join("bench", "results"), "folder to write results.md and throughput.svg to")
	flag.DurationVar(&c.duration, "duration", 300*time.Millisecond, "length of one throughput or latency run")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds per measurement, cluster and raw alternating; the median is kept")
	flag.Parse()
	if remoteModes() { // -serve or -connect: the network comparison between two hosts
		return
	}
	if c.rounds < 1 || c.duration <= 0 {
		log.Fatal("report: -rounds and -duration must be positive")
	}
	for _, t := range split(*transports) {
		if !bench.IsTransport(t) && !bench.IsReference(t) {
			log.Fatalf("report: unknown transport %q (have %s, %s)", t, strings.Join(bench.Transports(), ", "), strings.Join(bench.References(), ", "))
		}
		c.transports = append(c.transports, t)
	}
	for _, s := range split(*sizes) {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			log.Fatalf("report: bad size %q", s)
		}
		c.sizes = append(c.sizes, n)
	}
	c.sections = map[string]bool{}
	for _, s := range split(*sections) {
		if !slices.Contains(sectionNames, s) {
			log.Fatalf("report: unknown section %q (have %s)", s, strings.Join(sectionNames, ", "))
		}
		c.sections[s] = true
	}
	os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		log.Fatal(err)
	}
	runNetcond(&c) // network conditions: netcond.md and netcond.svg
	if onlyNetcond(&c) {
		return
	}
	start := time.Now()
	r := run(&c)
	r.took = time.Since(start)
	md := filepath.Join(c.out, "results.md")
	svg := filepath.Join(c.out, "throughput.svg")
	if err := os.WriteFile(svg, []byte(chart(r)), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(md, []byte(markdown(r, filepath.Base(svg))), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "\r\033[Kdone in %v: wrote %s and %s\n", r.took.Round(time.Second), md, svg)
}

func split(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// progress prints one updating status line.
type progress struct {
	done, total int
	start       time.Time
}

func (p *progress) step(format string, args ...any) {
	p.done++
	fmt.Fprintf(os.Stderr, "\r\033[K[%3d/%d %4.0fs] %s", p.done, p.total, time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

func (p *progress) warn(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "\r\033[K"+format+"\n", args...)
}

// Results.
type tput struct {
	transport             string
	size                  int
	cluster, handler, raw bench.Rate // medians; cluster and handler are zero for references
	copied                bench.Rate // a handler that copies each payload (tcp and memory only)
	err                   string
}

type rtt struct {
	transport      string
	p50, p99       time.Duration // cluster
	rawP50, rawP99 time.Duration
	chanP50        time.Duration // raw, each message handed to the receiver through a channel
	err            string
}

type setupRes struct {
	transport string
	p50, p90  time.Duration
	err       string
}

type meshRes struct {
	transport string
	nodes     int
	took      time.Duration
	err       string
}

type deathRes struct {
	kind, transport string
	took            time.Duration
	err             string
}

type allocRes struct {
	transport string
	size      int
	a         bench.Allocs
	err       string
}

type idleRes struct {
	transport string
	r         bench.Idle
	err       string
}

type results struct {
	c      *config
	took   time.Duration
	tputs  []tput
	rtts   []rtt
	setups []setupRes
	meshes []meshRes
	deaths []deathRes
	allocs []allocRes
	idles  []idleRes
}

var meshSizes = []int{8, 32, 64}

// linkSetups is how many links the setup section times per transport.
const linkSetups = 100

func run(c *config) *results {
	r := &results{c: c}
	p := &progress{start: time.Now()}
	nt := len(c.transports)
	if c.sections["throughput"] {
		p.total += nt * len(c.sizes) * c.rounds
	}
	if c.sections["latency"] {
		p.total += nt * c.rounds
	}
	meshTransports := filter(c.transports, bench.TCP, bench.Memory)
	deathCases := deathCases(c.transports)
	allocTransports := filter(c.transports, bench.TCP, bench.Memory)
	idleTransports := filter(c.transports, bench.Transports()...)
	setupTransports := filter(c.transports, bench.Transports()...)
	if c.sections["setup"] {
		p.total += len(setupTransports)
	}
	if c.sections["mesh"] {
		p.total += len(meshTransports) * len(meshSizes) * c.rounds
	}
	if c.sections["death"] {
		p.total += len(deathCases) * c.rounds
	}
	if c.sections["allocs"] {
		p.total += len(allocTransports) * len(c.sizes)
	}
	if c.sections["idle"] {
		p.total += len(idleTransports)
	}
	for _, t := range c.transports {
		if c.sections["throughput"] || c.sections["latency"] {
			measurePairs(c, r, p, t)
		}
	}
	if c.sections["setup"] {
		for _, t := range setupTransports {
			p.step("link setup: %s", t)
			sr := setupRes{transport: t}
			ds, err := bench.LinkSetup(t, linkSetups)
			if err != nil {
				sr.err = err.Error()
				p.warn("link setup %s: %v", t, err)
			} else {
				sr.p50, sr.p90 = bench.Percentile(ds, 0.5), bench.Percentile(ds, 0.9)
			}
			r.setups = append(r.setups, sr)
		}
	}
	if c.sections["mesh"] {
		for _, t := range meshTransports {
			for _, n := range meshSizes {
				var ds []time.Duration
				m := meshRes{transport: t, nodes: n}
				for range c.rounds {
					p.step("chain of Add to a full mesh: %s, %d nodes", t, n)
					d, err := bench.ChainToMesh(t, n)
					if err != nil {
						m.err = err.Error()
						p.warn("mesh %s %d: %v", t, n, err)
						break
					}
					ds = append(ds, d)
				}
				if m.err == "" {
					m.took = median(ds)
				}
				r.meshes = append(r.meshes, m)
			}
		}
	}
	if c.sections["death"] {
		for _, dc := range deathCases {
			var ds []time.Duration
			d := deathRes{kind: dc[0], transport: dc[1]}
			for range c.rounds {
				p.step("death to removal: %s over %s", dc[0], dc[1])
				t, err := bench.DetectDeath(dc[1], dc[0], 4)
				if err != nil {
					d.err = err.Error()
					p.warn("death %s %s: %v", dc[0], dc[1], err)
					break
				}
				ds = append(ds, t)
			}
			if d.err == "" {
				d.took = median(ds)
			}
			r.deaths = append(r.deaths, d)
		}
	}
	if c.sections["allocs"] {
		for _, t := range allocTransports {
			for _, s := range c.sizes {
				p.step("allocations per message: %s %s", t, bench.SizeName(s))
				a, err := bench.MeasureAllocs(t, s, max(2000, min(20000, (256<<20)/s)))
				ar := allocRes{transport: t, size: s, a: a}
				if err != nil {
					ar.err = err.Error()
					p.warn("allocs %s %d: %v", t, s, err)
				}
				r.allocs = append(r.allocs, ar)
			}
		}
	}
	if c.sections["idle"] {
		for _, t := range idleTransports {
			p.step("idle remotes: %s", t)
			i, err := bench.MeasureIdle(t, 16)
			ir := idleRes{transport: t, r: i}
			if err != nil {
				ir.err = err.Error()
				p.warn("idle %s: %v", t, err)
			}
			r.idles = append(r.idles, ir)
		}
	}
	return r
}

func filter(have []string, want ...string) []string {
	var out []string
	for _, h := range have {
		if slices.Contains(want, h) {
			out = append(out, h)
		}
	}
	return out
}

func deathCases(transports []string) [][2]string {
	var out [][2]string
	for _, t := range bench.Transports() {
		if slices.Contains(transports, t) && t != bench.Memory {
			out = append(out, [2]string{bench.Killed, t})
		}
	}
	if slices.Contains(transports, bench.Memory) {
		out = append(out, [2]string{bench.Killed, bench.Memory}, [2]string{bench.BlackHole, bench.Memory})
	}
	return out
}

// measurePairs runs the throughput and latency rounds of one transport:
// cluster and raw alternate, so that noise from other processes touches
// both alike.
func measurePairs(c *config, r *results, p *progress, t string) {
	layers := []string{"cluster", "handler", "raw"}
	if t == bench.TCP || t == bench.Memory {
		layers = append(layers, "copy") // the Inbox's floor, where it has targets
	}
	if c.sections["latency"] {
		layers = append(layers, "handoff") // the Inbox's floor in round trips
	}
	if bench.IsReference(t) {
		layers = []string{"raw"}
		if !bench.RefAvailable(t) {
			refViaGoTest(c, r, p, t)
			return
		}
	}
	pairs := map[string]*bench.Pair{}
	var setupErr error
	for _, l := range layers {
		var pr *bench.Pair
		var err error
		switch l {
		case "raw":
			pr, err = bench.RawPair(t)
		case "handler":
			pr, err = bench.HandlerPair(t)
		case "copy":
			pr, err = bench.CopyingHandlerPair(t)
		case "handoff":
			pr, err = bench.HandoffPair(t)
		default:
			pr, err = bench.ClusterPair(t)
		}
		if err != nil {
			setupErr = fmt.Errorf("%s %s: %w", t, l, err)
			p.warn("setup %v", setupErr)
			break
		}
		defer pr.Close()
		pairs[l] = pr
	}
	if c.sections["throughput"] {
		for _, s := range c.sizes {
			res := tput{transport: t, size: s}
			rates := map[string][]bench.Rate{}
			for i := range c.rounds {
				p.step("throughput: %s %s (round %d)", t, bench.SizeName(s), i+1)
				if setupErr != nil {
					res.err = setupErr.Error()
					continue
				}
				for _, l := range layers {
					if l == "handoff" {
						continue // it serves round trips only
					}
					rt, err := bench.ThroughputFor(pairs[l], s, c.duration)
					if err != nil {
						res.err = fmt.Sprintf("%s: %v", l, err)
						p.warn("throughput %s %d %s: %v", t, s, l, err)
						continue
					}
					rates[l] = append(rates[l], rt)
				}
			}
			res.cluster = medianRate(rates["cluster"])
			res.handler = medianRate(rates["handler"])
			res.raw = medianRate(rates["raw"])
			res.copied = medianRate(rates["copy"])
			r.tputs = append(r.tputs, res)
		}
	}
	if c.sections["latency"] {
		res := rtt{transport: t}
		var cl, raw, handoff [][]time.Duration
		for i := range c.rounds {
			p.step("round trip: %s (round %d)", t, i+1)
			if setupErr != nil {
				res.err = setupErr.Error()
				continue
			}
			for _, l := range layers {
				if l == "handler" || l == "copy" {
					continue // a handler's pair serves throughput only
				}
				ds, err := bench.RoundTripsFor(pairs[l], 64, c.duration)
				if err != nil {
					res.err = fmt.Sprintf("%s: %v", l, err)
					p.warn("round trip %s %s: %v", t, l, err)
					continue
				}
				switch l {
				case "raw":
					raw = append(raw, ds)
				case "handoff":
					handoff = append(handoff, ds)
				default:
					cl = append(cl, ds)
				}
			}
		}
		res.p50, res.p99 = pcts(cl)
		res.rawP50, res.rawP99 = pcts(raw)
		res.chanP50, _ = pcts(handoff)
		r.rtts = append(r.rtts, res)
	}
}

// pcts returns the median over rounds of each round's p50 and p99.
func pcts(rounds [][]time.Duration) (p50, p99 time.Duration) {
	var a, b []time.Duration
	for _, ds := range rounds {
		a = append(a, bench.Percentile(ds, 0.5))
		b = append(b, bench.Percentile(ds, 0.99))
	}
	return median(a), median(b)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func medianRate(rs []bench.Rate) bench.Rate { return bench.MedianRate(rs) }

// ratio is the Inbox's throughput over raw's.
func ratio(t tput) float64 { return rateRatio(t.cluster, t.raw) }

// handlerRatio is the handler's throughput over raw's.
func handlerRatio(t tput) float64 { return rateRatio(t.handler, t.raw) }

// copyRatio is the copying handler's throughput over raw's.
func copyRatio(t tput) float64 { return rateRatio(t.copied, t.raw) }

func rateRatio(a, raw bench.Rate) float64 {
	if raw.Msgs == 0 || a.Msgs == 0 {
		return 0
	}
	return a.MsgsPerSec() / raw.MsgsPerSec()
}

// target returns the Inbox's throughput target ratio for a transport and
// size, or 0.
func target(transport string, size int) float64 {
	switch {
	case size == 64<<10 && transport == bench.TCP:
		return 0.7
	case size == 64<<10:
		return 0.8
	case size == 1<<10:
		return 0.5
	case size == 64 && transport == bench.TCP:
		return 0.07
	}
	return 0
}

// handlerTarget returns the handler's throughput target ratio, or 0.
func handlerTarget(transport string, size int) float64 {
	if transport != bench.TCP {
		return 0
	}
	switch size {
	case 64:
		return 0.4
	case 1 << 10:
		return 0.7
	case 64 << 10:
		return 0.85
	}
	return 0
}

func env() string {
	host, _ := os.Hostname()
	_ = host
	return fmt.Sprintf("%s %s/%s, %d CPUs (GOMAXPROCS %d)", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))
}

// refViaGoTest measures a reference baseline that exists only in the bench
// package's test binary (it imports yamux or quic-go directly) by running
// its benchmarks with go test, and parses their metrics.
func refViaGoTest(c *config, r *results, p *progress, t string) {
	var kinds []string
	steps := 0
	if c.sections["throughput"] {
		kinds = append(kinds, "Throughput")
		steps += len(c.sizes) * c.rounds
	}
	if c.sections["latency"] {
		kinds = append(kinds, "RoundTrip")
		steps += c.rounds
	}
	p.step("%s: go test -bench (it imports its library directly)", t)
	p.done += steps - 1
	pattern := fmt.Sprintf("^Benchmark(%s)$/^transport=%s$/", strings.Join(kinds, "|"), t)
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", pattern,
		"-benchtime", c.duration.String(), "-count", strconv.Itoa(c.rounds), "github.com/peerkit/peerkit/bench")
	cmd.Env = append(os.Environ(), "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING=true")
	out, err := cmd.CombinedOutput()
	tputs := map[int][]bench.Rate{}
	var p50s, p99s []time.Duration
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		metric := func(unit string) float64 {
			for i := 1; i+1 < len(f); i++ {
				if f[i+1] == unit {
					v, _ := strconv.ParseFloat(f[i], 64)
					return v
				}
			}
			return 0
		}
		switch {
		case strings.HasPrefix(f[0], "BenchmarkThroughput/"):
			for _, s := range c.sizes {
				if strings.Contains(f[0], "/size="+bench.SizeName(s)+"/") {
					tputs[s] = append(tputs[s], bench.Rate{Msgs: int(metric("msgs/s")), Size: s, Elapsed: time.Second})
				}
			}
		case strings.HasPrefix(f[0], "BenchmarkRoundTrip/"):
			p50s = append(p50s, time.Duration(metric("p50-ns")))
			p99s = append(p99s, time.Duration(metric("p99-ns")))
		}
	}
	msg := ""
	if err != nil {
		msg = fmt.Sprintf("go test: %v", err)
		p.warn("%s: %s\n%s", t, msg, out)
	}
	if c.sections["throughput"] {
		for _, s := range c.sizes {
			res := tput{transport: t, size: s, raw: medianRate(tputs[s]), err: msg}
			if len(tputs[s]) == 0 && msg == "" {
				res.err = "no benchmark output"
			}
			r.tputs = append(r.tputs, res)
		}
	}
	if c.sections["latency"] {
		res := rtt{transport: t, rawP50: median(p50s), rawP99: median(p99s), err: msg}
		if len(p50s) == 0 && msg == "" {
			res.err = "no benchmark output"
		}
		r.rtts = append(r.rtts, res)
	}
}
