// Command fleet is the fleet-size benchmark's toolbox (bench/fleet.sh and bench/scaleout.sh run
// it): it serves thousands of simulated BMCs without QEMU, enrols their nodes (or fake ones)
// through the API, and loads the API with a crowd of readers.
//
//	fleet bmcs   serve -ipmi N IPMI 2.0 BMCs (RMCP+, one UDP socket for all, one address
//	             each) and -redfish N Redfish systems (one HTTP service), every answer after
//	             -latency; write the nodes to enrol to -nodes; every -report print how long
//	             ago the worst-served BMC was last read (the power sync lag seen by the BMCs)
//	fleet enrol  create the nodes of a -nodes file, or -fake N fake-hardware nodes
//	fleet load   -c clients mix list, detail, GET for -d; print p50/p99 per kind
//
// It talks only to the addresses it is given; bench scripts run it in a network namespace of
// their own when it listens on 0.0.0.0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	raiseFileLimit()
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "bmcs":
		err = runBMCs(ctx, args)
	case "enrol":
		err = runEnrol(ctx, args)
	case "load":
		err = runLoad(ctx, args)
	case "-h", "-help", "--help", "help":
		usage(os.Stdout)
		return
	default:
		usage(os.Stderr)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, "Usage: fleet bmcs|enrol|load [flags]   (fleet CMD -h for each one's flags)\n")
}

// raiseFileLimit lifts the soft limit of open files to the hard one (Go does so at start
// since 1.19; done again here so that the number is printed).
func raiseFileLimit() {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
	fmt.Fprintf(os.Stderr, "fleet: open files limit %d\n", r.Cur)
}
