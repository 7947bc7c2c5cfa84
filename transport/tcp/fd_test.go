package tcp_test

import (
	"testing"

	"github.com/peerkit/peerkit/internal/fdtest"
	"github.com/peerkit/peerkit/internal/selfsigned"
	"github.com/peerkit/peerkit/transport/tcp"
)

// TestAcceptSurvivesEMFILE runs the listener out of file descriptors while
// a conn arrives; once they are back, a new Dial must be accepted. Plain
// TCP returns the error to the caller's loop; with TLS the listener's own
// loop must retry it. Not parallel: it changes a limit of the process.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	conf, err := selfsigned.VerifiedConfig()
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]tcp.Option{
		"Plain": nil,
		"TLS":   {tcp.WithTLS(conf)},
	} {
		t.Run(name, func(t *testing.T) {
			log := fdtest.NewLog()
			tr, err := tcp.New(append(opts, tcp.WithLogger(log.Logger()))...)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := tr.Listen("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			fdtest.AcceptSurvives(t, fdtest.Scenario{Listener: ln, Log: log, Dial: tr.Dial})
		})
	}
}
