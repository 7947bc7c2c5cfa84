package quic

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
)

// enableICMPErrors asks the kernel to report ICMP errors on uc, an
// unconnected socket, through its error queue (IP_RECVERR, and
// IPV6_RECVERR on an IPv6 or dual-stack socket).
func enableICMPErrors(uc *net.UDPConn) error {
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var err4, err6 error
	if err := rc.Control(func(fd uintptr) {
		err4 = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVERR, 1)
		err6 = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_RECVERR, 1)
	}); err != nil {
		return err
	}
	if err4 != nil && err6 != nil {
		return err4
	}
	return nil
}

// readICMPErrors reads every ICMP error queued on uc.
func readICMPErrors(uc *net.UDPConn) []icmpReport {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil
	}
	var reports []icmpReport
	var payload [1]byte // the offending datagram's first byte is enough
	var oob [256]byte
	rc.Control(func(fd uintptr) {
		for {
			n, oobn, _, from, err := syscall.Recvmsg(int(fd), payload[:], oob[:], syscall.MSG_ERRQUEUE|syscall.MSG_DONTWAIT)
			if err != nil {
				return // EAGAIN: the queue is empty
			}
			r, ok := parseICMPError(from, oob[:oobn])
			if !ok {
				continue
			}
			r.handshake = n > 0 && payload[0]&0x80 != 0 // a QUIC long header
			reports = append(reports, r)
		}
	})
	return reports
}

// parseICMPError reads a report from the address and control message of
// one message of the error queue.
func parseICMPError(from syscall.Sockaddr, oob []byte) (icmpReport, bool) {
	var r icmpReport
	switch a := from.(type) {
	case *syscall.SockaddrInet4:
		r.to = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *syscall.SockaddrInet6:
		r.to = netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	default:
		return r, false
	}
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return r, false
	}
	for _, m := range msgs {
		recverr := (m.Header.Level == syscall.IPPROTO_IP && m.Header.Type == syscall.IP_RECVERR) ||
			(m.Header.Level == syscall.IPPROTO_IPV6 && m.Header.Type == syscall.IPV6_RECVERR)
		if recverr && len(m.Data) >= 4 { // struct sock_extended_err starts with ee_errno
			r.errno = syscall.Errno(binary.NativeEndian.Uint32(m.Data))
			return r, true
		}
	}
	return r, false
}
