package netnsenv

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The faults hook eth0 itself (netdev family, ingress and egress) rather
// than the inet input/output hooks: a packet dropped at the inet output hook
// fails the sender's sendmsg with EPERM, which no real network does, and
// quic-go takes that error as fatal for the whole connection; one dropped at
// the device's egress vanishes as if lost on the wire. Set
// PEERKIT_NETNS_HOOK=inet to use the input/output hooks instead.

// Hooks returns the table family and the in and out hook clauses for
// device dev at priority prio.
func Hooks(dev string, prio int) (family, in, out string) {
	if os.Getenv("PEERKIT_NETNS_HOOK") == "inet" {
		return "inet", fmt.Sprintf("type filter hook input priority %d", prio),
			fmt.Sprintf("type filter hook output priority %d", prio)
	}
	return "netdev", fmt.Sprintf("type filter hook ingress device %s priority %d", dev, prio),
		fmt.Sprintf("type filter hook egress device %s priority %d", dev, prio)
}

// NFT loads an nftables script into host i's namespace.
func (e *Env) NFT(i int, script string) error {
	if out, err := Sh(strings.NewReader(script), "ip", "netns", "exec", e.Hosts[i], "nft", "-f", "-"); err != nil {
		return fmt.Errorf("nft in h%d: %v\n%s\n%s", i+1, err, out, script)
	}
	return nil
}

// SetLoss drops pct% of the packets host i sends and of those it receives,
// counting what it drops and what it lets through. TCP packets from or to
// one of the exempt ports are never dropped (a control connection beside
// the measured ones).
func (e *Env) SetLoss(i, pct int, exempt ...int) error {
	family, in, out := Hooks(Dev, 0)
	var keep string
	for _, p := range exempt {
		keep += fmt.Sprintf("\t\tmeta l4proto tcp th sport %d accept\n\t\tmeta l4proto tcp th dport %d accept\n", p, p)
	}
	return e.NFT(i, fmt.Sprintf(`table %[1]s pkloss {
	chain in {
		%[2]s
%[5]s		numgen random mod 100 < %[4]d counter drop
		counter
	}
	chain out {
		%[3]s
%[5]s		numgen random mod 100 < %[4]d counter drop
		counter
	}
}
`, family, in, out, pct, keep))
}

// LossCounters returns how many packets host i's loss rules dropped and
// passed, both directions together.
func (e *Env) LossCounters(i int) (dropped, passed int) {
	family, _, _ := Hooks(Dev, 0)
	out, err := Sh(nil, "ip", "netns", "exec", e.Hosts[i], "nft", "list", "table", family, "pkloss")
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, "accept") {
			continue
		}
		f := strings.Fields(line)
		for j := range f {
			if f[j] == "packets" && j+1 < len(f) {
				n, _ := strconv.Atoi(f[j+1])
				if strings.Contains(line, "drop") {
					dropped += n
				} else {
					passed += n
				}
			}
		}
	}
	return dropped, passed
}

// Cut silently drops everything host i sends or receives: no RST, no ICMP.
func (e *Env) Cut(i int) error {
	family, in, out := Hooks(Dev, -10)
	return e.NFT(i, fmt.Sprintf(`table %[1]s pkcut {
	chain in {
		%[2]s; policy drop
	}
	chain out {
		%[3]s; policy drop
	}
}
`, family, in, out))
}

// Uncut removes Cut's rules.
func (e *Env) Uncut(i int) error {
	family, _, _ := Hooks(Dev, 0)
	if out, err := Sh(nil, "ip", "netns", "exec", e.Hosts[i], "nft", "delete", "table", family, "pkcut"); err != nil {
		return fmt.Errorf("uncut h%d: %v: %s", i+1, err, out)
	}
	return nil
}

// SetDelay adds d of delay on host i's egress (needs netem: see Netem).
func (e *Env) SetDelay(i int, d time.Duration) error {
	return e.tc(i, "qdisc", "replace", "dev", Dev, "root", "netem", "delay", fmt.Sprintf("%dus", d.Microseconds()))
}

// SetRate limits host i's egress with a token bucket (rate as tc takes it,
// e.g. "100mbit"; 32 KiB burst, 100 ms of queue).
func (e *Env) SetRate(i int, rate string) error {
	return e.tc(i, "qdisc", "replace", "dev", Dev, "root", "tbf", "rate", rate, "burst", "32kb", "latency", "100ms")
}

func (e *Env) tc(i int, args ...string) error {
	args = append([]string{"-n", e.Hosts[i]}, args...)
	if out, err := Sh(nil, "tc", args...); err != nil {
		return fmt.Errorf("tc %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// SetSegments makes host i's TCP and UDP stacks send wire-sized packets
// (perPacket, New's setting: a loss rule then drops one packet, as on a real
// link, not a 64 KiB super-packet) or let them pass 64 KiB segmentation-
// offload packets through the veth pair, as a NIC with TSO/GSO would.
func (e *Env) SetSegments(i int, perPacket bool) error {
	segs := "65535"
	if perPacket {
		segs = "1"
	}
	if out, err := Sh(nil, "ip", "-n", e.Hosts[i], "link", "set", "dev", Dev, "gso_max_segs", segs); err != nil {
		return fmt.Errorf("h%d: gso_max_segs %s: %v: %s", i+1, segs, err, out)
	}
	return nil
}

// ClearFaults removes every rule and qdisc from every host.
func (e *Env) ClearFaults() {
	for _, h := range e.Hosts {
		Sh(nil, "ip", "netns", "exec", h, "nft", "flush", "ruleset")
		Sh(nil, "tc", "-n", h, "qdisc", "del", "dev", Dev, "root")
	}
}
