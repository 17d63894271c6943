package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/BurntSushi/toml"

	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/vbmc"
)

const vbmcExample = `username = "admin"
password = "password"
redfish_listen = "127.0.0.1:8000"   # one Redfish service for all machines

[[machine]]
name = "node-1"
ipmi_listen = "127.0.0.1:6231"     # one IPMI 2.0 (lanplus) port per machine
serial_socket = "/var/tmp/node-1.serial"   # IPMI Serial-over-LAN attaches to it
command = ["qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-nographic",
           "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
           "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01",
           "-drive", "file=/var/tmp/node-1.qcow2,if=virtio",
           "-serial", "unix:/var/tmp/node-1.serial,server=on,wait=off"]
`

func runVBMC(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ironwork vbmc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "TOML file with the machines (required)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ironwork vbmc --config FILE\n\nServes IPMI 2.0 and Redfish BMCs for QEMU virtual machines: power on starts the\n"+
			"machine's command with the chosen boot order (-boot), power off stops it.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nExample configuration:\n\n%s", vbmcExample)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *configFile == "" {
		fs.Usage()
		return 2
	}
	var cfg vbmc.Config
	md, err := toml.DecodeFile(*configFile, &cfg)
	if err != nil {
		fmt.Fprintf(stderr, "ironwork vbmc: read %s: %v\n", *configFile, err)
		return 2
	}
	if un := md.Undecoded(); len(un) > 0 {
		fmt.Fprintf(stderr, "ironwork vbmc: %s: unknown settings: %v\n", *configFile, un)
		return 2
	}
	scfg := server.Default()
	scfg.LogLevel = *logLevel
	log := server.NewLogger(scfg, stderr)
	v, err := vbmc.Start(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "ironwork vbmc:", err)
		return 1
	}
	defer v.Close()
	for name, addr := range v.IPMIAddrs {
		fmt.Fprintf(stdout, "%s: IPMI on %s\n", name, addr)
	}
	if v.RedfishURL != "" {
		fmt.Fprintf(stdout, "Redfish on %s/redfish/v1 (systems at /redfish/v1/Systems/<name>)\n", v.RedfishURL)
	}
	if err := v.Serve(ctx); err != nil {
		fmt.Fprintln(stderr, "ironwork vbmc:", err)
		return 1
	}
	return 0
}
