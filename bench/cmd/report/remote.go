package main

// The two-host form of the network comparison:
//
//	go run ./bench/cmd/report -serve 10.0.0.2:7700              # on one host
//	go run ./bench/cmd/report -connect 10.0.0.2:7700            # on the other
//
// -connect measures every transport both ways against the -serve host and
// prints the network tables; -serve answers until interrupted. The control
// protocol is described in package bench/netcond. With -silence nft, the
// serving host's nftables table pkbench_silence_PID_N lives only while a
// silent-host run does; a -serve killed meanwhile leaves it behind
// (nft delete table inet pkbench_silence_PID_N).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/peerkit/peerkit/bench/netcond"
)

var (
	serveAddr   = flag.String("serve", "", "serve the network comparison on `host:port` for a -connect from another host, until interrupted")
	connectAddr = flag.String("connect", "", "run the network comparison against a -serve at `host:port` and print its tables")
	silenceHow  = flag.String("silence", "app", "with -serve: how a host goes silent: app (its conns stop; no root needed), nft (nftables drops its nodes' ports; root) or nft:DEV (on device DEV)")
	childPlan   = flag.String("netcond-child", "", "internal: with -connect, the plan as JSON; results as JSON on stdout")
	childLabel  = flag.String("netcond-label", "", "internal: the condition's name, with -netcond-child")
)

// remoteModes runs -serve or -connect and reports whether it did (the
// report's other sections then do not run).
func remoteModes() bool {
	os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	switch {
	case *serveAddr != "" && *connectAddr != "":
		log.Fatal("report: -serve and -connect exclude each other")
	case *serveAddr != "":
		if err := serve(*serveAddr, *silenceHow); err != nil {
			log.Fatalf("report: -serve: %v", err)
		}
	case *connectAddr != "" && *childPlan != "":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := netcond.ChildMain(ctx, *connectAddr, *childPlan, *childLabel); err != nil {
			log.Fatalf("report: %v", err)
		}
	case *connectAddr != "":
		if err := connect(*connectAddr); err != nil {
			log.Fatalf("report: -connect: %v", err)
		}
	default:
		return false
	}
	return true
}

func serve(addr, silence string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s, err := netcond.Serve(ln, silence, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Printf("serving the network comparison on %s (silence: %s); stop with Ctrl-C\n", s.Addr(), silence)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return s.Close() // ends every session, undoing its SILENCE
}

func connect(addr string) error {
	plan, err := netPlan()
	if err != nil {
		return err
	}
	rounds := *netRounds
	fmt.Fprintf(os.Stderr, "network comparison against %s: %d rounds × %d transports, %v runs: about %v\n",
		addr, rounds, len(plan.Transports), plan.Duration, (time.Duration(rounds) * plan.Estimate()).Round(time.Second))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := &progress{start: time.Now(), total: rounds * len(plan.Transports) * plan.Steps()}
	start := time.Now()
	var all [][]netcond.Result
	for range rounds {
		var rs []netcond.Result
		rs, err = netcond.Connect(ctx, addr, plan, "network", p.step)
		if len(rs) > 0 {
			all = append(all, rs)
		}
		if err != nil {
			break
		}
	}
	if err != nil && len(all) == 0 {
		return err
	}
	if err != nil {
		p.warn("stopped early: %v", err)
	}
	fmt.Fprintf(os.Stderr, "\r\033[Kdone in %v\n", time.Since(start).Round(time.Second))
	nr := &netResults{plan: plan, results: netcond.Median(all), took: time.Since(start), rounds: len(all),
		where: "between this host (the connecting side, *out*: from it) and " + addr + " (the serving side, *in*: towards this host)"}
	nr.conds = []netcond.Condition{{Name: "network"}}
	fmt.Print(netMarkdown(nr, ""))
	if errors.Is(err, context.Canceled) {
		os.Exit(130)
	}
	return nil
}
