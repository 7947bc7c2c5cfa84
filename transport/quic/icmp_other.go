//go:build !linux

package quic

import "net"

// enableICMPErrors does nothing: only Linux reports ICMP errors on an
// unconnected UDP socket (IP_RECVERR). Elsewhere a dial where nothing
// listens fails when the handshake times out.
func enableICMPErrors(*net.UDPConn) error { return nil }

// readICMPErrors returns nothing (see enableICMPErrors).
func readICMPErrors(*net.UDPConn) []icmpReport { return nil }
