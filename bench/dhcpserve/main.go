// Command dhcpserve runs internal/dhcp's server in full mode for
// benchmarks (bench/dhcp.sh): every MAC is a known port of a node that
// net-boots, leases are kept in memory, in an append-only JSON-lines
// file, or in a database through the SQL store ironwork serve uses
// (-database, for bench/dhcp-sql.sh). It is not the product's entry point
// (that is cmd/ironwork).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/ironwork/ironwork/internal/dhcp"
	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// everyone is a Nodes that knows every MAC and net-boots it.
type everyone struct{}

func (everyone) Lookup(context.Context, net.HardwareAddr) (dhcp.Client, error) {
	return dhcp.Client{Known: true, NetBoot: true, Node: "bench"}, nil
}

// fileLeases is MemoryLeases plus an append-only log of every change, so a
// run pays for writing each lease to a file (no fsync unless asked).
type fileLeases struct {
	*dhcp.MemoryLeases
	mu    sync.Mutex
	f     *os.File
	w     *bufio.Writer
	fsync bool
}

type logEntry struct {
	Op    string     `json:"op"`
	Lease dhcp.Lease `json:"lease"`
}

func (l *fileLeases) append(e logEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode lease: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Write(append(b, '\n'))
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("write lease log: %w", err)
	}
	if l.fsync {
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("sync lease log: %w", err)
		}
	}
	return nil
}

func (l *fileLeases) PutLease(ctx context.Context, le dhcp.Lease) error {
	if err := l.MemoryLeases.PutLease(ctx, le); err != nil {
		return err
	}
	return l.append(logEntry{Op: "put", Lease: le})
}

func (l *fileLeases) DeleteLease(ctx context.Context, subnet string, mac net.HardwareAddr) error {
	if err := l.MemoryLeases.DeleteLease(ctx, subnet, mac); err != nil {
		return err
	}
	return l.append(logEntry{Op: "delete", Lease: dhcp.Lease{MAC: mac, Subnet: subnet}})
}

func main() {
	iface := flag.String("interface", "", "interface to serve")
	start := flag.String("range-start", "", "first address")
	end := flag.String("range-end", "", "last address")
	workers := flag.Int("workers", dhcp.DefaultWorkers, "packets handled at once")
	leaseFile := flag.String("lease-file", "", "append leases to this file (default: memory only)")
	fsync := flag.Bool("fsync", false, "fsync the lease file after every change")
	relayed := flag.Bool("relayed", true, "answer relayed requests (perfdhcp sets giaddr)")
	subnets := flag.Int("subnets", 0, "serve N racks behind relays too: 10.(80+k).0.0/16, k = 1..N, range 10.(80+k).1.0-10.(80+k).250.255")
	database := flag.String("database", "", "keep leases in this database (postgres://... or an SQLite path), as ironwork serve does")
	verbose := flag.Bool("v", false, "debug logging")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var leases dhcp.Leases = dhcp.NewMemoryLeases()
	if *leaseFile != "" {
		f, err := os.OpenFile(*leaseFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			log.Error("open lease file", "error", err)
			os.Exit(1)
		}
		defer f.Close()
		leases = &fileLeases{MemoryLeases: dhcp.NewMemoryLeases(), f: f, w: bufio.NewWriter(f), fsync: *fsync}
	}
	if *database != "" {
		store, err := sqlstore.Open(context.Background(), *database, log)
		if err != nil {
			log.Error("open lease database", "error", err)
			os.Exit(1)
		}
		defer store.Close()
		leases = server.DHCPLeases(store)
	}
	cfg := dhcp.Config{
		Mode: dhcp.ModeFull, Interface: *iface,
		RangeStart: net.ParseIP(*start), RangeEnd: net.ParseIP(*end),
		HTTPBootURL: "http://127.0.0.1:8080", Workers: *workers, Relayed: *relayed,
	}
	for k := 1; k <= *subnets; k++ {
		b := byte(80 + k)
		cfg.Subnets = append(cfg.Subnets, dhcp.Subnet{
			Network:    &net.IPNet{IP: net.IPv4(10, b, 0, 0).To4(), Mask: net.CIDRMask(16, 32)},
			RangeStart: net.IPv4(10, b, 1, 0), RangeEnd: net.IPv4(10, b, 250, 255),
		})
	}
	s, err := dhcp.New(cfg, everyone{}, leases, log)
	if err != nil {
		log.Error("new server", "error", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintln(os.Stderr, "dhcpserve: serving on", *iface)
	if err := s.Serve(ctx); err != nil {
		log.Error("serve", "error", err)
		os.Exit(1)
	}
}
