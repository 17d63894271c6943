//go:build !linux

package agent

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ListenLLDP needs Linux packet sockets.
func ListenLLDP(context.Context, []string, time.Duration) (map[string][]LLDPTLV, error) {
	return nil, fmt.Errorf("listen for LLDP: %w", errors.ErrUnsupported)
}
