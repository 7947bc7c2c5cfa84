package netcond

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Bounds of the control protocol.
const (
	Version     = 1
	MaxLine     = 512              // bytes per line, newline included
	MaxNodes    = 4                // nodes per session
	MaxSessions = 4                // control connections served at once
	MaxRun      = 1_000_000_000    // payloads per SEND
	MaxSize     = 4 << 20          // bytes per payload (cluster.DefaultMaxMessageSize)
	MaxWait     = 10 * time.Minute // per WAIT
	IdleTimeout = 5 * time.Minute  // between two requests
	greeting    = "peerkit-netcond"
)

// errLineTooLong is a request or reply past MaxLine.
var errLineTooLong = errors.New("netcond: line too long")

// lineConn reads and writes protocol lines on a conn.
type lineConn struct {
	c  net.Conn
	br *bufio.Reader
}

func newLineConn(c net.Conn) *lineConn {
	return &lineConn{c: c, br: bufio.NewReaderSize(c, MaxLine)}
}

// read returns the next line's fields, waiting at most d.
func (l *lineConn) read(d time.Duration) ([]string, error) {
	l.c.SetReadDeadline(time.Now().Add(d))
	b, err := l.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, errLineTooLong
	}
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

// write sends one line, waiting at most d.
func (l *lineConn) write(d time.Duration, format string, args ...any) error {
	s := fmt.Sprintf(format, args...)
	s = strings.Map(func(r rune) rune { // one line, whatever an error said
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	if len(s)+1 > MaxLine {
		s = s[:MaxLine-1]
	}
	l.c.SetWriteDeadline(time.Now().Add(d))
	_, err := l.c.Write([]byte(s + "\n"))
	return err
}

// number parses a decimal in [lo, hi].
func number(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("bad number %q (want %d..%d)", s, lo, hi)
	}
	return n, nil
}

// reply splits an "OK ..." line into its values, or returns the error an
// "ERR ..." line carries.
func reply(f []string) ([]string, error) {
	switch {
	case len(f) > 0 && f[0] == "OK":
		return f[1:], nil
	case len(f) > 0 && f[0] == "ERR":
		return nil, fmt.Errorf("server: %s", strings.Join(f[1:], " "))
	}
	return nil, fmt.Errorf("netcond: malformed reply %q", strings.Join(f, " "))
}
