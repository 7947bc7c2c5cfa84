package memory

import (
	"net"
	"strconv"
)

// Addr is the address of a listener or of one end of a conn on a Network.
// It is a "host:port" string; hosts are free-form names, not IP addresses.
type Addr string

// Network returns "memory".
func (Addr) Network() string { return "memory" }

// String returns the address as "host:port".
func (a Addr) String() string { return string(a) }

// anonHost is the host of the local address of conns made by Dial, which
// does not name its source.
const anonHost = "anonymous"

// Port ranges: ports picked for Listen(":0") and local ports of dialled
// conns (like a kernel's ephemeral range).
const (
	firstListenPort    = 10000
	firstEphemeralPort = 49152
	lastPort           = 65535
)

// splitAddr parses "host:port" and returns the host and the port number.
func splitAddr(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > lastPort {
		return "", 0, &net.AddrError{Err: "invalid port", Addr: addr}
	}
	return host, port, nil
}

func joinAddr(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// normalize returns addr in canonical "host:port" form, or addr unchanged if
// it does not parse. Fault keys and listener keys go through it so that
// "node:080" and "node:80" name the same place.
func normalize(addr string) string {
	host, port, err := splitAddr(addr)
	if err != nil {
		return addr
	}
	return joinAddr(host, port)
}
