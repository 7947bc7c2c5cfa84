package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/peerkit/peerkit/bench"
)

func mark(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}

func ms(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f µs", float64(d)/1e3)
}

func num(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2f M", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1f k", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

// memoryNearTCP checks that the memory transport's ratios, Inbox and
// handler, are within 20 % of tcp's at each size.
func memoryNearTCP(r *results, check func(bool, string, ...any)) {
	by := map[[2]any]tput{}
	for _, t := range r.tputs {
		by[[2]any{t.transport, t.size}] = t
	}
	for _, s := range r.c.sizes {
		tc, ok1 := by[[2]any{bench.TCP, s}]
		mem, ok2 := by[[2]any{bench.Memory, s}]
		if !ok1 || !ok2 {
			continue
		}
		for _, k := range []struct {
			name string
			f    func(tput) float64
		}{{"Inbox", ratio}, {"handler", handlerRatio}} {
			a, b := k.f(mem), k.f(tc)
			if a == 0 || b == 0 {
				continue
			}
			check(a >= 0.8*b && a <= 1.2*b, "memory %s %s ratio %.2f within 20%% of tcp's %.2f", bench.SizeName(s), k.name, a, b)
		}
	}
}

func markdown(r *results, svg string) string {
	var b strings.Builder
	c := r.c
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# peerkit benchmark report\n\n")
	w("Made by `%s` on %s, %s, in %v. ",
		strings.Join(append([]string{"go run ./bench/cmd/report"}, os.Args[1:]...), " "), time.Now().UTC().Format("2006-01-02"), env(), r.took.Round(time.Second))
	w("Each run lasts %v; %d rounds, cluster, handler, copy and raw alternating in the same process, and the median round is kept. ", c.duration, c.rounds)
	w("*cluster* is `Node.Send` → `Inbox` between two nodes; *handler* is `Node.Send` → a `WithHandler` function, called on the link's reader with the payload lent from the read buffer; *copy* (tcp and memory) is a handler that copies each payload into a new slice, as a receiver that keeps its messages must: the Inbox's messages belong to the application, so that allocation, and the garbage collection it brings, is the least the Inbox can cost; *raw* is the same transport's conns used directly with a 4-byte length prefix and the same 16 KiB bufio buffers, flushed when the sender runs dry. ")
	w("The ratio cluster/raw is what the cluster layer costs. `ref-*` rows use the underlying library directly (net, crypto/tls, yamux, quic-go, net.Pipe). Loopback, shared machine: expect ±20%% between runs.\n\n")

	var checks []string
	check := func(ok bool, format string, args ...any) {
		checks = append(checks, fmt.Sprintf("- %s %s", mark(ok), fmt.Sprintf(format, args...)))
	}

	if len(r.tputs) > 0 {
		w("## One-way throughput\n\n![throughput ratio to raw](%s)\n\n", svg)
		w("| transport | size | cluster msgs/s | cluster MB/s | handler msgs/s | raw msgs/s | raw MB/s | ratio | target | handler ratio | target | copy ratio |\n")
		w("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|\n")
		for _, t := range r.tputs {
			if t.err != "" && t.raw.Msgs == 0 {
				w("| %s | %s | error: %s | | | | | | | | | |\n", t.transport, bench.SizeName(t.size), t.err)
				continue
			}
			cm, cb, hm, rat, tg, hrat, htg := "–", "–", "–", "–", "", "–", ""
			if bench.IsTransport(t.transport) && t.cluster.Msgs > 0 {
				cm, cb = num(t.cluster.MsgsPerSec()), fmt.Sprintf("%.1f", t.cluster.MBPerSec())
				rat = fmt.Sprintf("%.2f", ratio(t))
				if g := target(t.transport, t.size); g > 0 {
					ok := ratio(t) >= g
					tg = fmt.Sprintf("%s ≥ %.2f", mark(ok), g)
					check(ok, "%s %s throughput ratio %.2f ≥ %.2f", t.transport, bench.SizeName(t.size), ratio(t), g)
				}
			}
			if bench.IsTransport(t.transport) && t.handler.Msgs > 0 {
				hm, hrat = num(t.handler.MsgsPerSec()), fmt.Sprintf("%.2f", handlerRatio(t))
				if g := handlerTarget(t.transport, t.size); g > 0 {
					ok := handlerRatio(t) >= g
					htg = fmt.Sprintf("%s ≥ %.2f", mark(ok), g)
					check(ok, "%s %s handler throughput ratio %.2f ≥ %.2f", t.transport, bench.SizeName(t.size), handlerRatio(t), g)
				}
			}
			crat := "–"
			if t.copied.Msgs > 0 {
				crat = fmt.Sprintf("%.2f", copyRatio(t))
			}
			w("| %s | %s | %s | %s | %s | %s | %.1f | %s | %s | %s | %s | %s |\n", t.transport, bench.SizeName(t.size), cm, cb, hm,
				num(t.raw.MsgsPerSec()), t.raw.MBPerSec(), rat, tg, hrat, htg, crat)
		}
		w("\n")
		memoryNearTCP(r, check)
	}

	if len(r.rtts) > 0 {
		w("## Round trip, 64 B ping-pong\n\n")
		w("*through a channel* is the raw conns with each side's messages handed to the receiving goroutine through a channel by a goroutine that reads the conn, each payload in a new slice: the least that a receive API giving messages to the application's goroutine, as the Inbox does, adds to a raw conn (two goroutine wake-ups per round trip, which raw does not pay, and whose cost depends on the machine and its load: the ratio to it is what the cluster layer adds to any channel-based receive).\n\n")
		w("| transport | cluster p50 | cluster p99 | raw p50 | raw p99 | through a channel p50 | p50 ratio | target | ratio to through a channel |\n")
		w("|---|---:|---:|---:|---:|---:|---:|---|---:|\n")
		for _, t := range r.rtts {
			if t.err != "" && t.rawP50 == 0 {
				w("| %s | error: %s | | | | | | | |\n", t.transport, t.err)
				continue
			}
			if bench.IsReference(t.transport) {
				w("| %s | – | – | %s | %s | – | – | | – |\n", t.transport, ms(t.rawP50), ms(t.rawP99))
				continue
			}
			q := float64(t.p50) / float64(t.rawP50)
			ok := q <= 2
			check(ok, "%s round-trip p50 %s is %.2f× raw (≤ 2×)", t.transport, ms(t.p50), q)
			ch, chq := "–", "–"
			if t.chanP50 > 0 {
				ch, chq = ms(t.chanP50), fmt.Sprintf("%.2f", float64(t.p50)/float64(t.chanP50))
			}
			w("| %s | %s | %s | %s | %s | %s | %.2f | %s ≤ 2 | %s |\n", t.transport, ms(t.p50), ms(t.p99), ms(t.rawP50), ms(t.rawP99), ch, q, mark(ok), chq)
		}
		w("\n")
	}

	if len(r.setups) > 0 {
		w("## Link setup\n\n")
		w("From a new node's `Add` (dial, handshake, first views) to its first message in the other node's `Inbox`, over %d links; making and closing the new node are not timed.\n\n", linkSetups)
		w("| transport | p50 | p90 |\n|---|---:|---:|\n")
		for _, s := range r.setups {
			if s.err != "" {
				w("| %s | error: %s | |\n", s.transport, s.err)
				continue
			}
			w("| %s | %s | %s |\n", s.transport, ms(s.p50), ms(s.p90))
		}
		w("\n")
	}

	if len(r.meshes) > 0 {
		w("## Chain of Add to a full mesh\n\n")
		w("Node *i* adds node *i−1*, one call after the other; the time runs until every node's `RemoteChanged` shows all the others.\n\n")
		w("| transport | nodes | time | target |\n|---|---:|---:|---|\n")
		for _, m := range r.meshes {
			if m.err != "" {
				w("| %s | %d | error: %s | |\n", m.transport, m.nodes, m.err)
				continue
			}
			tg := ""
			if m.transport == bench.TCP && m.nodes == 64 {
				ok := m.took < time.Second
				tg = mark(ok) + " < 1 s"
				check(ok, "64 nodes over tcp reach a full mesh in %s (< 1 s)", ms(m.took))
			}
			w("| %s | %d | %s | %s |\n", m.transport, m.nodes, ms(m.took), tg)
		}
		w("\n")
	}

	if len(r.deaths) > 0 {
		w("## From a peer's death to its removal at every other node\n\n")
		w("Four nodes in a full mesh, heartbeat every 100 ms, network timeout 1 s. *killed*: every conn of the victim is closed at once, as the kernel does when a process dies (memory: `Network.Kill`, connections reset); *blackhole*: the victim goes silent (`Network.BlackHole`), so only the network timeout can tell.\n\n")
		w("| death | transport | time to removal at all 3 others |\n|---|---|---:|\n")
		for _, d := range r.deaths {
			if d.err != "" {
				w("| %s | %s | error: %s |\n", d.kind, d.transport, d.err)
				continue
			}
			w("| %s | %s | %s |\n", d.kind, d.transport, ms(d.took))
		}
		w("\n")
	}

	if len(r.allocs) > 0 {
		w("## Allocations per message\n\n")
		w("Every allocation made while messages flow is attributed by its stack (`runtime.MemProfileRate = 1`), as the difference of a window of 2n messages and one of n (a garbage collection, which the profile needs, empties the buffer pools; ±0.05 is noise). *send* is `Send` and the link's writer, *receive* the link's reader, in package cluster; *conn* counts what the transport's own `Write` and `Read` allocate (which the raw baseline pays too). The receive side's two are the payload handed to the application and its `*Message`.\n\n")
		w("| transport | size | send allocs | send B | receive allocs | receive B | conn allocs send / receive |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, a := range r.allocs {
			if a.err != "" {
				w("| %s | %s | error: %s | | | |\n", a.transport, bench.SizeName(a.size), a.err)
				continue
			}
			if a.transport == bench.TCP && a.size == 64 {
				ok := a.a.SendAllocs < 0.05
				check(ok, "tcp 64 B: %.3f allocations per message on the send path (0: the payload copy is pooled)", a.a.SendAllocs)
			}
			z := func(x float64) float64 { return max(x, 0) }
			w("| %s | %s | %.2f | %.0f | %.2f | %.0f | %.2f / %.2f |\n", a.transport, bench.SizeName(a.size), z(a.a.SendAllocs), z(a.a.SendBytes),
				z(a.a.RecvAllocs), z(a.a.RecvBytes), z(a.a.SendTransportAllocs), z(a.a.RecvTransportAllocs))
		}
		w("\n")
	}

	if len(r.idles) > 0 {
		w("## Idle remotes\n\n17 nodes in a full mesh (272 remote entries); Go heap and goroutine stacks, both ends of each conn, per remote entry.\n\n")
		w("| transport | KiB per remote | goroutines per remote |\n|---|---:|---:|\n")
		for _, i := range r.idles {
			if i.err != "" {
				w("| %s | error: %s | |\n", i.transport, i.err)
				continue
			}
			w("| %s | %.1f | %.2f |\n", i.transport, i.r.BytesPerRemote/1024, i.r.GoroutinesPerRemote)
		}
		w("\n")
	}

	if len(checks) > 0 {
		w("## Targets\n\n%s\n", strings.Join(checks, "\n"))
	}
	return b.String()
}
