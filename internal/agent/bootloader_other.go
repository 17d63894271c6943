//go:build !linux

package agent

import (
	"context"
	"fmt"
	"log/slog"
)

func installGRUBBIOS(context.Context, BootloaderRequest, Partition, *slog.Logger) (BootloaderResult, error) {
	return BootloaderResult{}, fmt.Errorf("%w: only on Linux", ErrBootloader)
}

func installUEFI(context.Context, BootloaderRequest, PartitionTable, Partition, Partition, *slog.Logger) (BootloaderResult, error) {
	return BootloaderResult{}, fmt.Errorf("%w: only on Linux", ErrBootloader)
}

func clearImmutable(string) {}
