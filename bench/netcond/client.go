package netcond

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/peerkit/peerkit/bench"
)

// client is the measuring side of a control connection. Its methods may be
// called from several goroutines: one request is in flight at a time.
type client struct {
	mu sync.Mutex
	lc *lineConn
}

// dialControl connects to a server and checks its version.
func dialControl(ctx context.Context, addr string) (*client, error) {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cl := &client{lc: newLineConn(c)}
	v, err := cl.do(10*time.Second, "HELLO %d", Version)
	if err == nil && (len(v) != 2 || v[0] != greeting) {
		err = fmt.Errorf("netcond: %s is not a netcond server (said %q)", addr, strings.Join(v, " "))
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return cl, nil
}

// localHost is the address of this host as the server sees it reached.
func (cl *client) localHost() string {
	h, _, _ := net.SplitHostPort(cl.lc.c.LocalAddr().String())
	return h
}

// do sends one request and waits up to d for its reply.
func (cl *client) do(d time.Duration, format string, args ...any) ([]string, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if err := cl.lc.write(10*time.Second, format, args...); err != nil {
		return nil, err
	}
	f, err := cl.lc.read(d + 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("netcond: waiting for the reply to %s: %w", strings.Fields(format)[0], err)
	}
	return reply(f)
}

func (cl *client) close() {
	cl.do(5*time.Second, "BYE")
	cl.lc.c.Close()
}

// nodes starts k server nodes and returns their addresses.
func (cl *client) nodes(tr string, k int, profile string) ([]string, error) {
	v, err := cl.do(time.Minute, "NODES %s %d %s", tr, k, profile)
	if err == nil && len(v) != k {
		err = fmt.Errorf("netcond: NODES: got %d addresses for %d nodes", len(v), k)
	}
	return v, err
}

func (cl *client) mode(i int, echoMax int) error {
	var err error
	if echoMax < 0 {
		_, err = cl.do(10*time.Second, "MODE %d sink", i)
	} else {
		_, err = cl.do(10*time.Second, "MODE %d echo %d", i, echoMax)
	}
	return err
}

// wait waits for server node i's end of run.
func (cl *client) wait(i int, d time.Duration) (msgs, bytes int, err error) {
	d = min(d, MaxWait)
	v, err := cl.do(d, "WAIT %d %d", i, d.Milliseconds())
	if err != nil {
		return 0, 0, err
	}
	if len(v) != 2 {
		return 0, 0, fmt.Errorf("netcond: WAIT: malformed reply %q", v)
	}
	msgs, err1 := strconv.Atoi(v[0])
	bytes, err2 := strconv.Atoi(v[1])
	return msgs, bytes, errors.Join(err1, err2)
}

// remoteSink is the receiving end of a run whose receiver is a server
// node: Recv waits for the node's end of run and returns 0; msgs is what
// the node counted.
type remoteSink struct {
	cl      *client
	i       int
	timeout time.Duration
	msgs    int
}

func (r *remoteSink) Send([]byte) error { return errors.New("netcond: remoteSink does not send") }
func (r *remoteSink) Flush() error      { return nil }
func (r *remoteSink) Recv() (int, error) {
	var err error
	r.msgs, _, err = r.cl.wait(r.i, r.timeout)
	return 0, err
}

// echoSink is the far end of round trips to a server node in echo mode:
// Recv returns at once (the node echoes by itself), and the run's end is
// collected afterwards with the client's wait, so that the control
// connection stays free meanwhile.
type echoSink struct{}

func (echoSink) Send([]byte) error  { return errors.New("netcond: echoSink does not send") }
func (echoSink) Flush() error       { return nil }
func (echoSink) Recv() (int, error) { return 0, nil }

// counting counts the payloads an endpoint receives.
type counting struct {
	bench.Endpoint
	msgs int
}

func (c *counting) Recv() (int, error) {
	k, err := c.Endpoint.Recv()
	if err == nil && k > 0 {
		c.msgs++
	}
	return k, err
}

// remoteSender is the sending end of a run whose sender is a server node:
// Send counts, Flush asks the node to send what was counted.
type remoteSender struct {
	cl      *client
	i       int
	to      string // the address of the receiving node
	n, size int
	timeout time.Duration
}

func (r *remoteSender) Send(p []byte) error {
	if len(p) > 0 {
		r.n++
		r.size = len(p)
	}
	return nil
}

func (r *remoteSender) Flush() error {
	n, size := r.n, r.size
	r.n = 0
	if n == 0 {
		return nil
	}
	_, err := r.cl.do(r.timeout, "SEND %d %d %d %s", r.i, n, size, r.to)
	return err
}

func (r *remoteSender) Recv() (int, error) {
	return 0, errors.New("netcond: remoteSender does not receive")
}
