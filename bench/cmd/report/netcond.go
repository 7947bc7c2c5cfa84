package main

// The network-conditions section: the transports compared between two
// network namespaces under the kernel's faults (package bench/netcond),
// written to netcond.md and netcond.svg beside results.md.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/peerkit/peerkit/bench"
	"github.com/peerkit/peerkit/bench/netcond"
	"github.com/peerkit/peerkit/internal/netnsenv"
)

var (
	netTransports = flag.String("net-transports", strings.Join(netcond.Transports(), ","), "network comparison: comma-separated transports")
	netSizes      = flag.String("net-sizes", "1024,65536", "network comparison: comma-separated throughput payload sizes in bytes")
	netSmall      = flag.Int("net-small", 64, "network comparison: payload of the round trips, alone and beside the bulk transfer, in bytes")
	netBulk       = flag.Int("net-bulk", 65536, "network comparison: payload of the bulk transfer beside the round trips, in bytes")
	netDuration   = flag.Duration("net-duration", 500*time.Millisecond, "network comparison: length of each throughput and round-trip run")
	netRounds     = flag.Int("net-rounds", 3, "network comparison: rounds (all conditions, then again); the median of each number is kept")
	netConditions = flag.String("net-conditions", "", "network conditions section: comma-separated clean, lossN, rateNmbit, delayNms (default clean,loss1,loss5,rate100mbit, and delay50ms where the kernel has netem)")
)

// netPlan is the plan the -net-* flags describe.
func netPlan() (netcond.Plan, error) {
	p := netcond.Plan{Transports: split(*netTransports), Small: *netSmall, Bulk: *netBulk, Duration: *netDuration}
	for _, s := range split(*netSizes) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return p, fmt.Errorf("bad -net-sizes entry %q", s)
		}
		p.Sizes = append(p.Sizes, n)
	}
	if *netRounds < 1 {
		return p, fmt.Errorf("-net-rounds must be at least 1")
	}
	return p, p.Check()
}

type netResults struct {
	plan    netcond.Plan
	conds   []netcond.Condition
	results []netcond.Result
	took    time.Duration
	where   string
	notes   []string
	rounds  int
}

// runNetcond runs the network-conditions section if it was asked for, and
// says why it skips when it cannot run.
func runNetcond(c *config) {
	if !c.sections["netcond"] {
		return
	}
	if err := netnsenv.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "\r\033[Knetwork conditions: skipped: %v\n", err)
		return
	}
	plan, err := netPlan()
	if err != nil {
		fmt.Fprintf(os.Stderr, "network conditions: %v\n", err)
		os.Exit(2)
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "network conditions: skipped: %v\n", err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	ns, err := netcond.NewNamespaces(ctx, exe)
	if ctx.Err() != nil {
		fmt.Fprintf(os.Stderr, "\r\033[Knetwork conditions: interrupted; namespaces removed\n")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\r\033[Knetwork conditions: skipped: %v\n", err)
		return
	}
	defer ns.Close() // also on Ctrl-C: the signal only cancels ctx
	names := split(*netConditions)
	if len(names) == 0 {
		names = netcond.DefaultConditions(ns.Netem())
	}
	nr := &netResults{plan: plan, where: "between two network namespaces (veth pairs on a bridge; h1 connects and measures, h2 serves: *out* is h1 → h2, *in* h2 → h1)"}
	if !ns.Netem() && len(split(*netConditions)) == 0 {
		nr.notes = append(nr.notes, "This kernel has no netem (`tc qdisc add … netem` fails), so there is no delay condition; where the kernel has it, the report adds `delay50ms`.")
	}
	for _, n := range names {
		cd, err := netcond.ParseCondition(n)
		if err != nil {
			fmt.Fprintf(os.Stderr, "network conditions: %v\n", err)
			return
		}
		nr.conds = append(nr.conds, cd)
	}
	rounds := *netRounds
	fmt.Fprintf(os.Stderr, "\r\033[Knetwork conditions: %d rounds × %d conditions × %d transports, %v runs: about %v\n",
		rounds, len(nr.conds), len(plan.Transports), plan.Duration, (time.Duration(rounds*len(nr.conds)) * plan.Estimate()).Round(time.Second))
	p := &progress{start: time.Now(), total: rounds * len(nr.conds) * len(plan.Transports) * plan.Steps()}
	all := make([][]netcond.Result, rounds)
	for i := range rounds {
		for _, cd := range nr.conds {
			rs, err := ns.Run(ctx, cd, plan, p.step)
			if ctx.Err() != nil {
				fmt.Fprintf(os.Stderr, "\r\033[Knetwork conditions: interrupted; namespaces removed\n")
				ns.Close()
				os.Exit(130)
			}
			if err != nil {
				p.warn("network conditions %s: %v", cd.Name, err)
				rs = nil
				for _, t := range plan.Transports {
					rs = append(rs, netcond.Result{Condition: cd.Name, Transport: t, RTTErr: err.Error(), HOLErr: err.Error(), RemovalErr: err.Error()})
				}
			}
			all[i] = append(all[i], rs...)
		}
	}
	ns.Close() // before anything can exit
	nr.results = netcond.Median(all)
	nr.rounds = rounds
	nr.took = time.Since(start)
	md, svg := filepath.Join(c.out, "netcond.md"), filepath.Join(c.out, "netcond.svg")
	if err := errors.Join(os.WriteFile(svg, []byte(netChart(nr)), 0o644),
		os.WriteFile(md, []byte(netMarkdown(nr, filepath.Base(svg))), 0o644)); err != nil {
		fmt.Fprintf(os.Stderr, "network conditions: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "\r\033[Knetwork conditions done in %v: wrote %s and %s\n", nr.took.Round(time.Second), md, svg)
}

// onlyNetcond reports whether no in-process section was asked for (then
// results.md is left as it is).
func onlyNetcond(c *config) bool {
	for s := range c.sections {
		if s != "netcond" {
			return false
		}
	}
	return true
}

func mbs(r bench.Rate, errText string) string {
	if errText != "" || r.Msgs == 0 {
		return "error"
	}
	return fmt.Sprintf("%.1f", r.MBPerSec())
}

func dur(d time.Duration, errText string) string {
	if errText != "" || d == 0 {
		return "error"
	}
	return ms(d)
}

func netMarkdown(nr *netResults, svg string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p := nr.plan
	if svg != "" {
		w("# peerkit across a network\n\n")
		args := append([]string{"go run ./bench/cmd/report"}, os.Args[1:]...)
		w("Made by `%s` on %s, %s, in %v, %s. ", strings.Join(args, " "), time.Now().UTC().Format("2006-01-02"), env(), nr.took.Round(time.Second), nr.where)
	} else {
		w("## peerkit across a network\n\nMeasured %s, in %v. ", nr.where, nr.took.Round(time.Second))
	}
	w("Every run is `Node.Send` → `Inbox` between nodes on the two hosts, each run about %v; %d rounds (every condition, then again), and each number is the median of the rounds (under loss, single runs vary by a factor of several). ", p.Duration, nr.rounds)
	w("Throughput is payload MB/s (10⁶ B). Round trips are %s ping-pongs. *beside bulk*: the same round trips while the measuring node sends %s messages without pause to a remote on the same host, first to **another remote** (its own link: each transport dials one connection, or one yamux session or QUIC connection, per remote address, so the two links share only the hosts, their queues and the bottleneck), then to **the bulk's own remote** (one ordered stream per link in every transport: each small one waits behind the bulk messages already queued for that remote, here at most %d: the measuring node runs with `WithSendQueueSize(%d)`, the default is 1024). ", bench.SizeName(p.Small), bench.SizeName(p.Bulk), netcond.HOLQueue, netcond.HOLQueue)
	w("*silent host removed*: a node on the serving host goes silent (nftables drops every packet of its ports, no RST, no ICMP) and the time runs until the measuring node's `RemoteRemoved`; both nodes use a heartbeat of 100 ms and a network timeout of 1 s (peerkit's defaults are 1 s and 5 s).\n\n")
	for _, n := range nr.notes {
		w("%s\n\n", n)
	}
	if len(nr.conds) > 1 || nr.conds[0].Name != "network" {
		w("| condition | what it is |\n|---|---|\n")
		for _, c := range nr.conds {
			w("| %s | %s |\n", c.Name, c.Describe())
		}
		w("\n")
	}
	if svg != "" {
		w("![throughput and round trips per condition](%s)\n\n", svg)
	}
	w("### Throughput, MB/s\n\n| condition | transport |")
	for _, s := range p.Sizes {
		w(" %s out | %s in |", bench.SizeName(s), bench.SizeName(s))
	}
	w("\n|---|---|%s\n", strings.Repeat("---:|---:|", len(p.Sizes)))
	for _, r := range nr.results {
		w("| %s | %s |", r.Condition, r.Transport)
		for _, s := range p.Sizes {
			i := slices.IndexFunc(r.Tput, func(t netcond.Throughput) bool { return t.Size == s })
			if i < 0 {
				w(" error | error |")
				continue
			}
			t := r.Tput[i]
			w(" %s | %s |", mbs(t.Out, t.OutErr), mbs(t.In, t.InErr))
		}
		w("\n")
	}
	w("\n### Round trips, head-of-line blocking and a silent host\n\n")
	w("| condition | transport | round trip p50 | p99 | beside bulk, another remote: p50 | p99 | beside bulk, the bulk's remote: p50 | p99 | bulk MB/s meanwhile | silent host removed after |\n")
	w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range nr.results {
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Condition, r.Transport,
			dur(r.RTT50, r.RTTErr), dur(r.RTT99, r.RTTErr),
			dur(r.HOLOther50, r.HOLErr), dur(r.HOLOther99, r.HOLErr), dur(r.HOLSame50, r.HOLErr), dur(r.HOLSame99, r.HOLErr),
			mbs(r.HOLBulk, r.HOLErr), dur(r.Removal, r.RemovalErr))
	}
	var errs []string
	for _, r := range nr.results {
		for _, t := range r.Tput {
			errs = appendErr(errs, r, bench.SizeName(t.Size)+" out", t.OutErr)
			errs = appendErr(errs, r, bench.SizeName(t.Size)+" in", t.InErr)
		}
		errs = appendErr(errs, r, "round trip", r.RTTErr)
		errs = appendErr(errs, r, "beside bulk", r.HOLErr)
		errs = appendErr(errs, r, "silent host", r.RemovalErr)
	}
	if len(errs) > 0 {
		w("\nErrors:\n\n%s\n", strings.Join(errs, "\n"))
	}
	return b.String()
}

func appendErr(errs []string, r netcond.Result, what, e string) []string {
	if e == "" {
		return errs
	}
	return append(errs, fmt.Sprintf("- %s, %s, %s: %s", r.Condition, r.Transport, what, e))
}
