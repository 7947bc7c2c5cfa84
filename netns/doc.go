// Package netns holds peerkit's real-network tests: five hosts, each its
// own Linux network namespace, joined by veth pairs on a bridge that lives
// in a sixth ("switch") namespace, so the root namespace is left untouched.
// One testnode process (./testnode) runs in each host namespace, and the
// faults come from the kernel: packet loss and cut links from nftables rules
// in a host's namespace, bandwidth limits from a tbf qdisc. The network is
// made by package internal/netnsenv, which the benchmark report's
// network-conditions section uses too; TestReportServeConnect runs the
// report's two-host form (-serve on h2, -connect on h1).
//
// The tests sit behind the build tag "netns" and need root, iproute2 and
// nftables; elsewhere they skip with a message saying what is missing:
//
//	sudo go test -tags netns -count=1 -v ./netns/
//
// Environment knobs:
//
//	PEERKIT_NETNS_REQUIRE=1           a skip becomes a failure (for CI)
//	PEERKIT_NETNS_TRANSPORTS=tcp,quic  fewer transports (default tcp,quic,mux)
//	PEERKIT_NETNS_CONDS=loss5         only the clean or only the lossy runs
//	PEERKIT_NETNS_BURST=2000x1024     messages x bytes per node per burst
//	PEERKIT_NETNS_HOOK=inet           loss and cuts on the inet input/output
//	                                  hooks instead of eth0's ingress/egress
//	PEERKIT_NETNS_NODE_ARGS="-quic-idle 5s"  extra testnode flags
//	PEERKIT_NETNS_LOGDIR=dir          keep every node's debug log there
//
// Each node logs at debug level to its own file; the tails are printed when
// a test fails.
package netns
