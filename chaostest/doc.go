// Package chaostest runs an application's cluster logic (leader choice,
// sharding, failover) on a whole cluster under random faults, in virtual
// time, and checks the invariants the application promises: the fault
// schedules and checks peerkit runs on itself, offered to its users.
//
// Each seed draws a schedule: a cluster of nodes on a memory network
// (transport/memory) that join one another, then partitions, heals, cut
// and reset links, black holes, crashes, restarts, graceful leaves,
// CloseRemote calls and latency changes at random times; then the network
// heals for good and settles, and the invariants are checked. The run
// happens inside a testing/synctest bubble, so seconds of faults and
// timeouts take milliseconds, and a failure prints the seed, the schedule
// as readable lines, what happened, and the one command that replays it.
//
// The application supplies how to start one node (Test.Start gets the
// node's address, the network and the cluster options to pass to
// cluster.New) and its invariants:
//
//	func TestLeader(t *testing.T) {
//		chaostest.Run(t, chaostest.Test[*leader]{
//			Start: func(h *chaostest.Host) (*leader, error) {
//				n, err := cluster.New(h.Addr, h.Options...)
//				if err != nil {
//					return nil, err
//				}
//				return newLeader(n), nil // follows n's RemoteAdded and RemoteRemoved
//			},
//			Invariants: []chaostest.Invariant[*leader]{{
//				Name: "one leader",
//				Check: func(apps []*leader) error {
//					for _, a := range apps {
//						if a.Leader() != apps[0].Leader() {
//							return fmt.Errorf("%s names %s, %s names %s", ...)
//						}
//					}
//					return nil
//				},
//			}},
//		}, chaostest.WithSeeds(200), chaostest.WithoutFaults(chaostest.CloseRemote))
//	}
//
// The application's type (here *leader) implements App: Node returns its
// cluster node, Close stops it and the node. TestLeader and
// TestLeaderPlantedBug in example_leader_test.go are this example in full;
// the second plants a bug (a leader that ignores RemoteRemoved) and shows
// Find catching it.
//
// # Flags and options
//
// The flags, on the test binary's command line, override the options:
//
//	-chaostest.seeds=N   run seeds 1..N (WithSeeds; default 100; -short caps it at 20)
//	-chaostest.seed=N    run only seed N, to replay a failure (WithSeed)
//	-chaostest.trace     print every seed's report, not only a failure's (WithTrace)
//	-chaostest.log       add the nodes' debug logs to the report (WithLogs)
//
// Other options shape the schedules: WithNodes, WithSteps, WithFaults and
// WithoutFaults, WithTimeouts (the nodes' healthy interval and network
// timeout; the schedule's gaps scale with it), WithSettle. NewSchedule
// draws a seed's schedule without running it.
//
// # What a run does
//
// Every node starts (Start) and joins through an earlier one; a setup
// that fails fails the seed. Then each step runs at its time: a Crash
// kills the address on the network (conns reset, nothing more gets out)
// and then calls the application's Close, so no goodbye reaches anyone; a
// Leave calls Close alone; a Restart starts a new instance at a dead
// address, which joins through a live node, retrying through others as a
// deployment's seed list would. Invariants marked EveryStep are checked
// after every step. At the final heal the partition ends and every cut
// link and black hole is undone (latency stays); once the settle time has
// passed (two network timeouts by default), every invariant is checked.
// Finally every live application is closed and the bubble must end with
// no goroutine left.
//
// Seeds run in parallel subtests (WithSequential turns that off), so state
// an application shares between its nodes belongs to one seed: key it by
// Host.Seed. An invariant may wait in virtual time (for instance, stop the
// application's load and let queued messages arrive) before it checks.
//
// Schedules depend only on the seed and the options, and the network
// draws its jitter from the seed too. Not every detail of a run does:
// instance ids are random, and goroutines that run at the same virtual
// instant may interleave differently, so two runs of a seed can trace
// differently; a failure that the schedule provokes comes back when the
// seed is replayed (TestLeaderPlantedBug checks that it does).
package chaostest
