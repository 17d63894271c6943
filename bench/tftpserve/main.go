// Command tftpserve runs Ironwork's TFTP server (internal/tftp) on its own, for bench/tftp.sh:
//
//	tftpserve -root DIR -listen 127.0.0.1:6969
//
// It serves DIR read-only until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ironwork/ironwork/internal/tftp"
)

func main() {
	root := flag.String("root", ".", "directory to serve")
	listen := flag.String("listen", "127.0.0.1:6969", "UDP address to listen on")
	maxTransfers := flag.Int("max-transfers", tftp.DefaultMaxTransfers, "transfers at once")
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()

	level := slog.LevelWarn
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := tftp.NewDir(*root, tftp.Config{MaxTransfers: *maxTransfers}, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tftpserve:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.ListenAndServe(ctx, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "tftpserve:", err)
		os.Exit(1)
	}
}
