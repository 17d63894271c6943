// Command mdcheck is the /init of a test ramdisk (internal/agent's TestMDRaidInQEMU): it loads
// the md modules, builds a RAID-1 array over /dev/vda and /dev/vdb with agent.CreateMD, writes
// through it, stops it, checks both members' superblocks and data, assembles it again with
// agent.AssembleMD, and powers off. Every result is a line starting with "MDCHECK".
package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ironwork/ironwork/internal/agent"
	"github.com/ironwork/ironwork/internal/agent/initsys"
)

func main() {
	if err := initsys.MountEarly(); err != nil {
		fmt.Println("MDCHECK mount:", err)
	}
	rel, _ := initsys.KernelRelease()
	if _, err := initsys.LoadModules(filepath.Join("/lib/modules", rel), slog.New(slog.DiscardHandler)); err != nil {
		fmt.Println("MDCHECK modules:", err)
	}
	if err := run(); err != nil {
		fmt.Println("MDCHECK FAIL", err)
	} else {
		fmt.Println("MDCHECK OK")
	}
	initsys.PowerOff()
}

func run() error {
	devs := []string{"/dev/vda", "/dev/vdb"}
	md, err := agent.CreateMD(0, 1, devs)
	if err != nil {
		return err
	}
	data := bytes.Repeat([]byte("IRONWORK"), 512)
	f, err := os.OpenFile(md, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err != nil {
		return fmt.Errorf("write %s: %w", md, err)
	}
	if err := agent.StopMD(0); err != nil {
		return err
	}
	var uuid [4]uint32
	for i, d := range devs {
		sb, ok, err := agent.ReadMDSuperblock(d)
		if err != nil || !ok || sb.Level != 1 || sb.RaidDisks != 2 || sb.Minor != 0 {
			return fmt.Errorf("superblock of %s: %+v %v %v", d, sb, ok, err)
		}
		if i == 0 {
			uuid = sb.UUID
		} else if sb.UUID != uuid {
			return fmt.Errorf("members of one array with two UUIDs: %v %v", uuid, sb.UUID)
		}
		g, err := os.Open(d)
		if err != nil {
			return err
		}
		buf := make([]byte, len(data))
		_, err = g.ReadAt(buf, 0)
		g.Close()
		if err != nil || !bytes.Equal(buf, data) {
			return fmt.Errorf("%s does not start with what was written to %s: %v", d, md, err)
		}
		fmt.Println("MDCHECK member", d, "holds the data and the superblock")
	}
	if _, err := agent.AssembleMD(0, devs); err != nil {
		return err
	}
	stat, _ := os.ReadFile("/proc/mdstat")
	if !bytes.Contains(stat, []byte("md0 : active raid1")) {
		return fmt.Errorf("/proc/mdstat after assembly: %s", stat)
	}
	if err := agent.StopMD(0); err != nil {
		return err
	}
	for _, d := range devs {
		if err := agent.WipeMDSuperblock(d); err != nil {
			return err
		}
		if _, ok, _ := agent.ReadMDSuperblock(d); ok {
			return fmt.Errorf("%s keeps its superblock after the wipe", d)
		}
	}
	return nil
}
