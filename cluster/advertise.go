package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// The address a node advertises: what other hosts dial to reach it. A
// wildcard (0.0.0.0, ::, an empty host) or port 0 is never advertised.

// hostAddr is one address of an interface of this host.
type hostAddr struct {
	iface    string
	ip       netip.Addr
	up       bool
	loopback bool
}

// interfaceAddrs lists the addresses of this host's interfaces.
func interfaceAddrs() ([]hostAddr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []hostAddr
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			out = append(out, hostAddr{
				iface:    ifc.Name,
				ip:       pfx.Addr().Unmap(),
				up:       ifc.Flags&net.FlagUp != 0,
				loopback: ifc.Flags&net.FlagLoopback != 0,
			})
		}
	}
	return out, nil
}

// wildcardHost reports whether host listens on every address.
func wildcardHost(host string) bool {
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}

// routableAddr picks the address this host advertises when it listens on
// a wildcard, as memberlist does, among the global unicast addresses of up,
// non-loopback interfaces: a private IPv4 address first; else another IPv4
// address (memberlist would fail here; a host whose only IPv4 addresses
// are public is still reached at one of them); and only where the host has
// no IPv4 address at all, IPv6, a unique local address before a global
// one. It returns the chosen address and its interface.
func routableAddr(addrs []hostAddr) (netip.Addr, string, error) {
	best, rank := -1, 0
	for i, a := range addrs {
		if !a.up || a.loopback || a.ip.IsLoopback() || a.ip.IsLinkLocalUnicast() || !a.ip.IsGlobalUnicast() {
			continue
		}
		r := 1 // global IPv6
		switch {
		case a.ip.Is4() && a.ip.IsPrivate():
			r = 4
		case a.ip.Is4():
			r = 3
		case a.ip.IsPrivate():
			r = 2
		}
		if r > rank {
			best, rank = i, r
		}
	}
	if best < 0 {
		return netip.Addr{}, "", errors.New("this host has no up, non-loopback interface with a routable address")
	}
	return addrs[best].ip, addrs[best].iface, nil
}

// advertiseAddr returns the address to advertise for a listener at
// listenAddr, and the interface it was chosen from ("" if the listener's
// own address is advertised).
func advertiseAddr(listenAddr string, list func() ([]hostAddr, error)) (adv, iface string, err error) {
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return "", "", fmt.Errorf("cluster: listen address %q: %w", listenAddr, err)
	}
	if port == "0" {
		return "", "", fmt.Errorf("cluster: the transport listens on %q, port 0: set WithAdvertiseAddr", listenAddr)
	}
	if !wildcardHost(host) {
		return listenAddr, "", nil
	}
	addrs, err := list()
	if err == nil {
		var ip netip.Addr
		if ip, iface, err = routableAddr(addrs); err == nil {
			return net.JoinHostPort(ip.String(), port), iface, nil
		}
	}
	return "", "", fmt.Errorf("cluster: listening on the wildcard %q, and no address of this host to advertise (%v): set WithAdvertiseAddr", listenAddr, err)
}

// checkAdvertise reports why addr cannot be advertised: not host:port, a
// wildcard host or port 0 (other hosts cannot dial those).
func checkAdvertise(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", addr, err)
	}
	if wildcardHost(host) {
		return fmt.Errorf("%q has a wildcard host, which other hosts cannot dial", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err == nil && p == 0 {
		return fmt.Errorf("%q has port 0, which other hosts cannot dial", addr)
	}
	return nil
}
