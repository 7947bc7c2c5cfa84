package main

import (
	"bufio"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// chatter runs one chat node in-process with piped input and output.
type chatter struct {
	in    *io.PipeWriter
	lines chan string
	addr  string
	done  chan error
}

func startChat(t *testing.T, name, join, secret string) *chatter {
	t.Helper()
	return startChatOver(t, "tcp", name, join, secret)
}

func startChatOver(t *testing.T, transport, name, join, secret string) *chatter {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := &chatter{in: inW, lines: make(chan string, 100), done: make(chan error, 1)}
	ready := make(chan string, 1)
	cfg := config{listen: "127.0.0.1:0", join: join, transport: transport, secret: secret, name: name,
		ready: func(addr string) { ready <- addr }}
	go func() {
		c.done <- run(cfg, inR, outW, make(chan os.Signal))
		outW.Close()
	}()
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	select {
	case c.addr = <-ready:
	case err := <-c.done:
		t.Fatalf("%s did not start: %v", name, err)
	}
	t.Cleanup(func() { inW.Close(); <-c.done })
	return c
}

// expectLog is expect that logs the line found.
func (c *chatter) expectLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-c.lines:
			if strings.Contains(l, want) {
				t.Log(l)
				return
			}
		case <-deadline:
			t.Fatalf("no line with %q", want)
		}
	}
}

// expect waits for a line containing want.
func (c *chatter) expect(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("output ended before %q", want)
			}
			if strings.Contains(l, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no line with %q", want)
		}
	}
}

func TestChatThreeNodes(t *testing.T) {
	const secret = "0123456789abcdef0123"
	ann := startChat(t, "ann", "", secret)
	bob := startChat(t, "bob", ann.addr, secret)
	cy := startChat(t, "cy", bob.addr, secret) // meets ann through bob
	ann.expect(t, "cy@"+cy.addr+" joined")
	cy.expect(t, "ann@"+ann.addr+" joined")

	io.WriteString(cy.in, "hello from cy\n")
	ann.expect(t, "<cy@"+cy.addr+"> hello from cy")
	bob.expect(t, "<cy@"+cy.addr+"> hello from cy")

	bob.in.Close() // end of input: bob leaves gracefully
	ann.expect(t, "bob@"+bob.addr+" left")
	cy.expect(t, "bob@"+bob.addr+" left")

	eve := startChat(t, "eve", ann.addr, "wrongwrongwrongwrong")
	eve.expect(t, "could not join "+ann.addr)
	eve.expect(t, "check -secret")
}

// A node on another transport cannot join, and the chat says why it may
// be: mux over a tcp node reads garbage, quic (UDP) to a tcp port is
// refused.
func TestChatSaysTransportsDiffer(t *testing.T) {
	ann := startChat(t, "ann", "", "")
	mo := startChatOver(t, "mux", "mo", ann.addr, "")
	mo.expectLog(t, "could not join "+ann.addr)
	mo.expectLog(t, "transports differ?")
	qu := startChatOver(t, "quic", "qu", ann.addr, "")
	qu.expect(t, "could not join "+ann.addr)
	qu.expectLog(t, "do the transports differ? valid: tcp, quic, mux")
}
