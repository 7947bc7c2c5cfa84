package netcond

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/peerkit/peerkit/bench"
	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/internal/acceptloop"
)

// Server serves the control protocol (see the package documentation) on
// a listener. Close stops it and waits for everything it started.
type Server struct {
	ln      net.Listener
	silence string // "app", "nft" or "nft:DEV"
	log     *slog.Logger
	done    chan struct{}   // closed by Close
	ctx     context.Context // canceled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	slots   chan struct{}

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Serve starts serving on ln. silence says how SILENCE makes a session's
// nodes silent: "app" (their conns stop reading and swallow writes; no
// root needed), "nft" (nftables drops their packets on the inet input and
// output hooks; needs root) or "nft:DEV" (on device DEV's ingress and
// egress, as a lost link would). log may be nil.
func Serve(ln net.Listener, silence string, log *slog.Logger) (*Server, error) {
	if err := checkSilence(silence); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{ln: ln, silence: silence, log: log, done: make(chan struct{}),
		slots: make(chan struct{}, MaxSessions), conns: map[net.Conn]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Go(s.acceptLoop)
	return s, nil
}

// Addr is where the server listens.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting, ends every session (closing its nodes and undoing
// SILENCE) and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.cancel()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) acceptLoop() {
	var b acceptloop.Backoff
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if acceptloop.Closed(err) || !b.Wait(s.log, "netcond", err, s.done) {
				return
			}
			continue
		}
		b.Reset()
		select {
		case s.slots <- struct{}{}:
		default:
			lc := newLineConn(c)
			lc.write(time.Second, "ERR busy: %d sessions already", MaxSessions)
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			<-s.slots
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() { <-s.slots }()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			ss := &session{srv: s, lc: newLineConn(c)}
			defer ss.closeNodes()
			ss.serve()
		})
	}
}

// session is one control connection and the nodes it started.
type session struct {
	srv      *Server
	lc       *lineConn
	nodes    []*srvNode
	net      *bench.Net
	silenced func() error // undoes SILENCE; nil when not silenced
}

// srvNode is one node of a session and its Inbox loop.
type srvNode struct {
	n     *cluster.Node
	fz    *freezer
	ends  chan [2]int // msgs, bytes received before each empty payload
	mu    sync.Mutex
	echo  int // payloads of at most echo bytes go back; -1: none
	loopW sync.WaitGroup
}

func (ss *session) serve() {
	for {
		f, err := ss.lc.read(IdleTimeout)
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				ss.lc.write(time.Second, "ERR %v", err)
			}
			return
		}
		if len(f) == 0 {
			ss.lc.write(time.Second, "ERR empty request")
			return
		}
		out, err := ss.handle(f)
		if err != nil {
			ss.lc.write(10*time.Second, "ERR %s: %v", f[0], err)
			if errors.Is(err, errProtocol) {
				return
			}
			continue
		}
		if f[0] == "BYE" {
			ss.lc.write(10*time.Second, "OK")
			return
		}
		if ss.lc.write(10*time.Second, "OK%s", out) != nil {
			return
		}
	}
}

// errProtocol marks a request the server does not understand: the
// connection ends after the reply.
var errProtocol = errors.New("protocol error")

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

// handle runs one request and returns the values of its OK reply (with a
// leading space), or an error.
func (ss *session) handle(f []string) (string, error) {
	arity := map[string]int{"HELLO": 1, "NODES": 3, "MODE": -2, "WAIT": 2, "SEND": 4, "SILENCE": 0, "UNSILENCE": 0, "CLOSE": 0, "BYE": 0}
	want, ok := arity[f[0]]
	switch {
	case !ok:
		return "", protoErr("unknown command")
	case want >= 0 && len(f)-1 != want, want < 0 && len(f)-1 < -want:
		return "", protoErr("wrong number of arguments")
	}
	switch f[0] {
	case "HELLO":
		if f[1] != fmt.Sprint(Version) {
			return "", protoErr("version %q not supported (have %d)", f[1], Version)
		}
		return fmt.Sprintf(" %s %d", greeting, Version), nil
	case "NODES":
		return ss.startNodes(f[1], f[2], f[3])
	case "MODE":
		return "", ss.mode(f[1:])
	case "WAIT":
		return ss.wait(f[1], f[2])
	case "SEND":
		return "", ss.send(f[1], f[2], f[3], f[4])
	case "SILENCE":
		return ss.silence()
	case "UNSILENCE":
		return "", ss.unsilence()
	case "CLOSE":
		ss.closeNodes()
	}
	return "", nil
}

// Profiles of node options.
var profiles = map[string][]cluster.Option{
	"default": nil,
	"fast": {
		cluster.WithHealthyInterval(100 * time.Millisecond),
		cluster.WithNetworkTimeout(time.Second),
		cluster.WithReconnectInterval(100 * time.Millisecond),
		cluster.WithMaxReconnectInterval(time.Second),
	},
}

func (ss *session) startNodes(tr, k, profile string) (string, error) {
	if !slices.Contains(Transports(), tr) {
		return "", protoErr("unknown transport %q", tr)
	}
	n, err := number(k, 1, MaxNodes)
	if err != nil {
		return "", protoErr("%v", err)
	}
	opts, ok := profiles[profile]
	if !ok {
		return "", protoErr("unknown profile %q", profile)
	}
	ss.closeNodes()
	host, _, err := net.SplitHostPort(ss.lc.c.LocalAddr().String())
	if err != nil {
		return "", err
	}
	if ss.net, err = bench.NewNet(tr); err != nil {
		return "", err
	}
	var addrs []string
	for range n {
		tr, err := ss.net.Transport()
		if err != nil {
			ss.closeNodes()
			return "", err
		}
		fz := &freezer{Transport: tr}
		nd, err := cluster.New(net.JoinHostPort(host, "0"), append([]cluster.Option{cluster.WithTransport(fz)}, opts...)...)
		if err != nil {
			ss.closeNodes()
			return "", err
		}
		sn := &srvNode{n: nd, fz: fz, ends: make(chan [2]int, 64), echo: -1}
		sn.loopW.Go(sn.loop)
		ss.nodes = append(ss.nodes, sn)
		addrs = append(addrs, nd.AdvertiseAddr())
	}
	return " " + strings.Join(addrs, " "), nil
}

// loop drains the node's Inbox until the node closes.
func (sn *srvNode) loop() {
	msgs, bytes := 0, 0
	for m := range sn.n.Inbox {
		k := len(m.Payload)
		if k == 0 {
			select {
			case sn.ends <- [2]int{msgs, bytes}:
			default: // nobody waits for that many ends: drop the oldest
				<-sn.ends
				sn.ends <- [2]int{msgs, bytes}
			}
			msgs, bytes = 0, 0
			continue
		}
		msgs++
		bytes += k
		sn.mu.Lock()
		echo := k <= sn.echo
		sn.mu.Unlock()
		if echo {
			sn.n.Send(m.From, m.Payload) // an error means the link is gone: the client will time out
		}
	}
}

func (ss *session) closeNodes() {
	if ss.silenced != nil {
		ss.unsilence()
	}
	var wg sync.WaitGroup
	for _, sn := range ss.nodes {
		wg.Go(func() {
			sn.fz.thaw() // a frozen conn would hold Close up
			sn.n.Close()
			sn.loopW.Wait()
		})
	}
	wg.Wait()
	ss.nodes = nil
	if ss.net != nil {
		ss.net.Close()
		ss.net = nil
	}
}

// Transports returns the transports netcond compares (bench.Transports
// without memory, which has no network).
func Transports() []string {
	return slices.DeleteFunc(bench.Transports(), func(t string) bool { return t == bench.Memory })
}
