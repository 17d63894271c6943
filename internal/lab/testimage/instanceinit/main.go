// Command instanceinit is /init of the test image that internal/lab/testimage builds: it
// mounts the early filesystems, loads the disk and ISO 9660 modules, prints the booted line
// with the firmware kind, reports the config drive (if any) and then idles forever.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ironwork/ironwork/internal/agent/initsys"
	"github.com/ironwork/ironwork/internal/lab/testimage"
)

const (
	configMount = "/run/config-2"
	diskWait    = 10 * time.Second
)

func main() {
	if !initsys.IsPID1() {
		fmt.Fprintln(os.Stderr, "instanceinit: must run as PID 1 of the test image")
		os.Exit(2)
	}
	mountErr := initsys.MountEarly()
	console := initsys.OpenConsole(true)
	log := slog.New(slog.NewTextHandler(console, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if mountErr != nil {
		log.Warn("early mounts", "error", mountErr)
	}
	if rel, err := initsys.KernelRelease(); err == nil {
		if _, err := initsys.LoadModules(filepath.Join("/lib/modules", rel), log); err != nil {
			log.Warn("modules", "error", err)
		}
	}
	firmware := testimage.FirmwareBIOS
	if _, err := os.Stat("/sys/firmware/efi"); err == nil {
		firmware = testimage.FirmwareUEFI
	}
	line(console, testimage.BootedLine(firmware))
	rep, err := findConfigDrive()
	if err != nil {
		log.Warn("config drive", "error", err)
	}
	line(console, rep.Line())
	for {
		time.Sleep(time.Hour)
	}
}

func line(w io.Writer, s string) { fmt.Fprintf(w, "%s\r\n", s) }

// findConfigDrive waits (bounded) for a disk with partitions, then probes every partition for
// an ISO 9660 volume labelled config-2 and reads it.
func findConfigDrive() (testimage.ConfigDriveReport, error) {
	deadline := time.Now().Add(diskWait)
	for {
		parts := partitions()
		for _, p := range parts {
			if label, err := isoLabel("/dev/" + p); err == nil && label == "config-2" {
				return readConfigDrive("/dev/" + p)
			}
		}
		if len(parts) > 0 || time.Now().After(deadline) {
			return testimage.ConfigDriveReport{}, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// partitions lists the block devices in /sys/class/block that are partitions.
func partitions() []string {
	entries, err := os.ReadDir("/sys/class/block")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join("/sys/class/block", e.Name(), "partition")); err == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func isoLabel(dev string) (string, error) {
	f, err := os.Open(dev)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 17*2048)
	if _, err := io.ReadFull(f, head); err != nil {
		return "", err
	}
	return testimage.ISOVolumeLabel(head)
}

func readConfigDrive(dev string) (testimage.ConfigDriveReport, error) {
	rep := testimage.ConfigDriveReport{Found: true}
	if err := os.MkdirAll(configMount, 0o755); err != nil {
		return rep, err
	}
	if err := unix.Mount(dev, configMount, "iso9660", unix.MS_RDONLY, ""); err != nil {
		return rep, fmt.Errorf("mount %s: %w", dev, err)
	}
	defer unix.Unmount(configMount, 0)
	dir := filepath.Join(configMount, "openstack/latest")
	b, err := os.ReadFile(filepath.Join(dir, "meta_data.json"))
	if err != nil {
		return rep, err
	}
	var md struct {
		Hostname   string            `json:"hostname"`
		UUID       string            `json:"uuid"`
		PublicKeys map[string]string `json:"public_keys"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return rep, fmt.Errorf("meta_data.json: %w", err)
	}
	rep.Hostname, rep.UUID = md.Hostname, md.UUID
	for k := range md.PublicKeys {
		rep.Keys = append(rep.Keys, k)
	}
	if fi, err := os.Stat(filepath.Join(dir, "user_data")); err == nil {
		rep.UserDataBytes = fi.Size()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return rep, err
	}
	if _, err := os.Stat(filepath.Join(dir, "network_data.json")); err == nil {
		rep.NetworkData = true
	}
	return rep, nil
}
