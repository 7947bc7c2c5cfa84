//go:build !linux

package cluster

import "net"

// newSyscallNowWriter: direct sends over sockets are built for Linux only;
// elsewhere large payloads are always queued.
func newSyscallNowWriter(net.Conn) nowWriter { return nil }
