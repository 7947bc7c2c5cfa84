package mux_test

import (
	"testing"

	"github.com/peerkit/peerkit/internal/fdtest"
	"github.com/peerkit/peerkit/internal/selfsigned"
	"github.com/peerkit/peerkit/transport/mux"
)

// TestAcceptSurvivesEMFILE runs the listener out of file descriptors while
// a TCP conn arrives; once they are back, a new Dial must be accepted. Not
// parallel: it changes a limit of the process.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	conf, err := selfsigned.VerifiedConfig()
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]mux.Option{
		"Plain": nil,
		"TLS":   {mux.WithTLS(conf)},
	} {
		t.Run(name, func(t *testing.T) {
			log := fdtest.NewLog()
			srv := newTransport(t, append(opts, mux.WithLogger(log.Logger()))...)
			ln, err := srv.Listen("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cli := newTransport(t, opts...)
			fdtest.AcceptSurvives(t, fdtest.Scenario{Listener: ln, Log: log, Dial: cli.Dial})
		})
	}
}
