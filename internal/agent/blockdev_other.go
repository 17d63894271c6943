//go:build !linux

package agent

import (
	"errors"
	"os"
)

func sectorSize(*os.File) (int, error)              { return 0, errors.ErrUnsupported }
func blkZeroOut(*os.File, int64, int64) error       { return errors.ErrUnsupported }
func blkDiscard(*os.File, int64, int64, bool) error { return errors.ErrUnsupported }
func punchHole(*os.File, int64, int64) error        { return errors.ErrUnsupported }
func rereadPartitions(*os.File) error               { return errors.ErrUnsupported }
