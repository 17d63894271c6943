// Command ironwork is Ironwork's single binary: the server (serve) and the command-line client
// for its Ironic-compatible API (node, port, portgroup, chassis, driver, conductor).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `ironwork: bare-metal provisioning with an Ironic-compatible API

Usage:
  ironwork serve [flags]                    run the server (see 'ironwork serve --help')
  ironwork vbmc --config FILE               virtual IPMI and Redfish BMCs for QEMU machines
  ironwork ramdisk build --kernel-dir DIR --output DIR   build the deploy ramdisk
  ironwork lab up|status|down|demo          a QEMU lab on this machine (demo: deploy two nodes)
  ironwork deploy --resource-class C --image URL --hostname H [flags]   allocate a node and deploy it
  ironwork undeploy NODE                    take a deployed node back to available
  ironwork console NODE                     attach this terminal to the node's serial console (~. leaves)
  ironwork node|port|portgroup|chassis VERB  manage records: list, show, create, set, unset, delete
  ironwork node list --watch                the node list, drawn again at every change (events stream)
  ironwork node manage|provide|deploy|undeploy|inspect|rebuild|adopt|abort NODE [--wait] [--timeout 30m]
                                            move a node; --wait follows it live to rest (deploy: [--image URL --checksum SUM])
  ironwork node inventory NODE              the inventory and plugin data of its last inspection
  ironwork inspection-rule VERB             inspection rules: --conditions/--actions JSON (or @FILE), --priority
  ironwork driver list|show|properties      hardware types and their interfaces
  ironwork conductor list|show              registered conductors
  ironwork version                          print the version

Client flags (before or after the verb):
  --url URL          API endpoint (default $IRONWORK_URL, $OS_ENDPOINT or http://127.0.0.1:6385)
  --username USER    HTTP basic user (default $IRONWORK_USERNAME)
  --password PASS    HTTP basic password (default $IRONWORK_PASSWORD)
  -o table|json      output format (default table)
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "vbmc":
		return runVBMC(ctx, args[1:], stdout, stderr)
	case "ramdisk":
		return runRamdisk(ctx, args[1:], stdout, stderr)
	case "lab":
		return runLab(ctx, args[1:], stdout, stderr)
	case "deploy":
		return runDeploy(ctx, args[1:], stdout, stderr)
	case "undeploy":
		return runUndeploy(ctx, args[1:], stdout, stderr)
	case "console":
		return runConsole(ctx, args[1:], os.Stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "ironwork", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	if _, ok := resources[args[0]]; ok {
		return runCLI(ctx, args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "ironwork: unknown command %q\n\n%s", args[0], usage)
	return 2
}
