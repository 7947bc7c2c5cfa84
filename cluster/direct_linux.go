package cluster

import (
	"net"
	"syscall"
	"unsafe"
)

// syscallNowWriter writes to a TCP or Unix socket with one writev that
// does not wait: the socket is non-blocking, and the write is tried once.
// Only the holder of the link's wmu uses it.
type syscallNowWriter struct {
	rc  syscall.RawConn
	net string // "tcp" or "unix", for errors
	iov [2]syscall.Iovec
	cnt int
	n   int
	err syscall.Errno
	fn  func(fd uintptr) bool // write, made once
}

func newSyscallNowWriter(c net.Conn) nowWriter {
	var sc syscall.Conn
	network := "tcp"
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc, network = c, "unix"
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &syscallNowWriter{rc: rc, net: network}
	w.fn = w.write
	return w
}

func (w *syscallNowWriter) write(fd uintptr) bool {
	r, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(w.cnt))
	w.n, w.err = int(r), e
	return true // one try: never wait for the socket to be writable
}

func (w *syscallNowWriter) writeNow(hdr, payload []byte) (int, error) {
	w.cnt = 0
	for _, b := range [2][]byte{hdr, payload} {
		if len(b) > 0 {
			w.iov[w.cnt].Base = &b[0]
			w.iov[w.cnt].SetLen(len(b))
			w.cnt++
		}
	}
	if w.cnt == 0 {
		return 0, nil
	}
	w.n, w.err = 0, 0
	err := w.rc.Write(w.fn)
	w.iov = [2]syscall.Iovec{} // hold no pointer to the payload
	switch {
	case err != nil:
		return 0, err
	case w.err == syscall.EAGAIN || w.err == syscall.EINTR:
		return 0, nil
	case w.err != 0:
		return 0, &net.OpError{Op: "write", Net: w.net, Err: w.err}
	}
	return w.n, nil
}
