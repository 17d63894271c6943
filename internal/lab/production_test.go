package lab

import (
	"slices"
	"strings"
	"testing"
)

func TestQEMUCommandRandomSources(t *testing.T) {
	st := &State{Dir: t.TempDir(), Netns: "iwlab-x"}
	n := Node{Name: "m", Firmware: "bios", MAC: "52:54:00:00:00:01", Tap: "tap0", Disk: "/d", Serial: "/s"}
	for _, tc := range []struct {
		spec      NodeSpec
		wantCPU   string // "" means no -cpu
		wantVirtR bool
	}{
		{NodeSpec{}, "", true},
		{NodeSpec{RNG: "virtio"}, "", true},
		{NodeSpec{RNG: "none", CPU: "max"}, "max", false},
		{NodeSpec{RNG: "none", CPU: "qemu64,-rdrand"}, "qemu64,-rdrand", false},
	} {
		args, err := qemuCommand(st, n, tc.spec, "/bin/ironwork")
		if err != nil {
			t.Fatalf("%+v: %v", tc.spec, err)
		}
		cpu := ""
		if i := slices.Index(args, "-cpu"); i >= 0 && i+1 < len(args) {
			cpu = args[i+1]
		}
		if cpu != tc.wantCPU || slices.Contains(args, "virtio-rng-pci") != tc.wantVirtR {
			t.Errorf("%+v: -cpu %q, virtio-rng %v; want %q, %v: %s", tc.spec, cpu, slices.Contains(args, "virtio-rng-pci"),
				tc.wantCPU, tc.wantVirtR, strings.Join(args, " "))
		}
		if args[len(args)-2] != "-device" || !strings.HasPrefix(args[len(args)-1], "virtio-net-pci,") {
			t.Errorf("%+v: the NIC is not last: %s", tc.spec, strings.Join(args, " "))
		}
	}
	if _, err := qemuCommand(st, n, NodeSpec{RNG: "hwrng"}, "/bin/ironwork"); err == nil {
		t.Error("an unknown rng was accepted")
	}
}

func TestInLayout(t *testing.T) {
	st := &State{Netns: "iwlab-x", Layout: LayoutProduction}
	bin, args := st.inLayout("ipmi_sim", "-n")
	if got := bin + " " + strings.Join(args, " "); got != "ip netns exec iwlab-x ipmi_sim -n" {
		t.Errorf("production layout: %s", got)
	}
	st.Layout = LayoutLab
	if bin, args := st.inLayout("ipmi_sim", "-n"); bin != "ipmi_sim" || len(args) != 1 {
		t.Errorf("lab layout: %s %v", bin, args)
	}
	o := Options{Layout: "staging"}
	if err := o.check(); err == nil || !strings.Contains(err.Error(), "staging") {
		t.Errorf("an unknown layout: %v", err)
	}
}
