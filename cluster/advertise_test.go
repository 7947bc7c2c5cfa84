package cluster

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func addrs4and6(list ...string) []hostAddr {
	var out []hostAddr
	for _, s := range list {
		// "name flags ip": flags "u" up, "l" loopback.
		f := strings.Fields(s)
		out = append(out, hostAddr{iface: f[0], up: strings.Contains(f[1], "u"), loopback: strings.Contains(f[1], "l"), ip: netip.MustParseAddr(f[2])})
	}
	return out
}

// A node that listens on a wildcard advertises a routable address of this
// host: a private IPv4 address of an up, non-loopback interface, then
// another IPv4 address, and IPv6 only where the host has no IPv4; with
// none, New fails and says to set WithAdvertiseAddr.
func TestAdvertiseAddrOnWildcard(t *testing.T) {
	cases := []struct {
		name, listen string
		ifaces       []hostAddr
		want, iface  string // want "" means an error
	}{
		{"not a wildcard", "10.1.2.3:7946", nil, "10.1.2.3:7946", ""},
		{"private IPv4 over the rest", "0.0.0.0:7946", addrs4and6(
			"lo ul 127.0.0.1", "lo ul ::1", "docker0 - 172.17.0.1", "eth0 u 2001:db8::5",
			"eth0 u fe80::1", "eth0 u 203.0.113.9", "eth1 u 10.0.0.5"), "10.0.0.5:7946", "eth1"},
		{"IPv6 wildcard", "[::]:7946", addrs4and6("eth0 u 192.168.1.20"), "192.168.1.20:7946", "eth0"},
		{"empty host", ":7946", addrs4and6("eth0 u 192.168.1.20"), "192.168.1.20:7946", "eth0"},
		{"no IPv4: unique local IPv6", "[::]:7946", addrs4and6("eth0 u 2001:db8::5", "eth0 u fd00::7", "eth0 u fe80::1"), "[fd00::7]:7946", "eth0"},
		{"no IPv4: global IPv6", "[::]:7946", addrs4and6("eth0 u 2001:db8::5"), "[2001:db8::5]:7946", "eth0"},
		{"public IPv4 before IPv6", "0.0.0.0:7946", addrs4and6("eth0 u fd00::2", "eth0 u 203.0.113.9"), "203.0.113.9:7946", "eth0"},
		{"loopback only", "0.0.0.0:7946", addrs4and6("lo ul 127.0.0.1", "lo ul ::1"), "", ""},
		{"interface down", "0.0.0.0:7946", addrs4and6("eth0 - 10.0.0.5"), "", ""},
		{"port 0 unresolved", "10.0.0.1:0", nil, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, iface, err := advertiseAddr(c.listen, func() ([]hostAddr, error) { return c.ifaces, nil })
			if c.want == "" {
				if err == nil {
					t.Fatalf("advertised %q, want an error", got)
				}
				if !strings.Contains(err.Error(), "WithAdvertiseAddr") {
					t.Fatalf("error %q does not say to set WithAdvertiseAddr", err)
				}
				return
			}
			if err != nil || got != c.want || iface != c.iface {
				t.Fatalf("advertise %q from %q (%v), want %q from %q", got, iface, err, c.want, c.iface)
			}
		})
	}
	if _, _, err := advertiseAddr("0.0.0.0:1", func() ([]hostAddr, error) { return nil, errors.New("no netlink") }); err == nil {
		t.Fatal("an interface listing error was ignored")
	}
}

// New on a wildcard, over real TCP, advertises an address of this host
// (and logs it), never the wildcard; or, on a host with nothing routable,
// fails naming WithAdvertiseAddr.
func TestNewOnWildcardNeverAdvertisesIt(t *testing.T) {
	var log logBuffer
	n, err := New("0.0.0.0:0", WithLogger(log.logger()))
	switch {
	case err != nil && !strings.Contains(err.Error(), "WithAdvertiseAddr"):
		t.Fatalf("New on a wildcard failed without saying what to do: %v", err)
	case err != nil:
		t.Logf("this host has no routable address: %v", err)
	default:
		adv := n.AdvertiseAddr()
		n.Close()
		if err := checkAdvertise(adv); err != nil {
			t.Fatalf("advertises %q: %v", adv, err)
		}
		if !strings.Contains(log.String(), "advertise="+adv) {
			t.Fatalf("the chosen address is not logged:\n%s", log.String())
		}
	}
	// Fake interfaces: the fake address is advertised.
	n2, err := New("0.0.0.0:0", func(o *options) error {
		o.interfaces = func() ([]hostAddr, error) { return addrs4and6("eth9 u 10.9.9.9"), nil }
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	if !strings.HasPrefix(n2.AdvertiseAddr(), "10.9.9.9:") {
		t.Fatalf("advertises %q, want the interface's 10.9.9.9", n2.AdvertiseAddr())
	}
	_, err = New("0.0.0.0:0", func(o *options) error {
		o.interfaces = func() ([]hostAddr, error) { return addrs4and6("lo ul 127.0.0.1"), nil }
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "WithAdvertiseAddr") {
		t.Fatalf("New with only loopback: %v, want an error naming WithAdvertiseAddr", err)
	}
}

// WithAdvertiseAddr refuses what no other host can dial.
func TestWithAdvertiseAddrRefusesWildcardAndPortZero(t *testing.T) {
	for _, a := range []string{"0.0.0.0:7946", "[::]:7946", ":7946", "10.0.0.1:0", "no-port", "[::1]:0"} {
		if n, err := New("127.0.0.1:0", WithAdvertiseAddr(a)); err == nil {
			n.Close()
			t.Errorf("WithAdvertiseAddr(%q) accepted", a)
		} else if !strings.Contains(err.Error(), "WithAdvertiseAddr") {
			t.Errorf("WithAdvertiseAddr(%q): error %q does not name the option", a, err)
		}
	}
	n, err := New("127.0.0.1:0", WithAdvertiseAddr("node-1.peers.default.svc:7946"))
	if err != nil {
		t.Fatalf("a DNS name: %v", err)
	}
	n.Close()
}
