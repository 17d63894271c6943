package initsys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/jsimonetti/rtnetlink"
	"github.com/jsimonetti/rtnetlink/rtnl"
	"github.com/mdlayher/netlink"
)

// Bond modes by the names network_data uses (the kernel's numbers).
var bondModes = map[string]uint8{"balance-rr": 0, "active-backup": 1, "balance-xor": 2, "broadcast": 3, "802.3ad": 4,
	"balance-tlb": 5, "balance-alb": 6, "": 0}

// Netlink attribute numbers of the bond and VLAN drivers (linux/if_link.h).
const (
	iflaBondMode = 1
	iflaVLANID   = 1
)

// ApplyNetworkPlan configures the machine as p says: physical links up (with their MTU),
// bonds and VLANs made, static addresses and routes added, DNS servers written to
// resolvConf (when set). It returns the Linux name of each link ID. Links to run DHCP on are
// brought up and left to the caller.
func ApplyNetworkPlan(p NetPlan, resolvConf string, log *slog.Logger) (map[string]string, error) {
	rt, err := rtnl.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("apply network_data: %w", err)
	}
	defer rt.Close()
	names := map[string]string{}
	byID := map[string]PlanLink{}
	for _, l := range p.Links {
		byID[l.ID] = l
	}
	// Bonds first take their members, then VLANs sit on any link: three passes.
	for _, kind := range []string{"phy", "bond", "vlan"} {
		for _, l := range p.Links {
			if l.Kind != kind {
				continue
			}
			var name string
			switch kind {
			case "phy":
				name = l.NIC
			case "bond":
				name = ifName("bond", l.ID, "")
				mode, ok := bondModes[l.BondMode]
				if !ok {
					return names, fmt.Errorf("apply network_data: bond %s: mode %q is not one Linux has", l.ID, l.BondMode)
				}
				var members []string
				for _, m := range l.Members {
					members = append(members, names[m])
				}
				if err := makeBond(rt, name, mode, members); err != nil {
					return names, fmt.Errorf("apply network_data: bond %s: %w", l.ID, err)
				}
			case "vlan":
				parent := names[l.Parent]
				if parent == "" {
					return names, fmt.Errorf("apply network_data: vlan %s: parent %s was not made", l.ID, l.Parent)
				}
				name = ifName(parent+".", fmt.Sprint(l.VLANID), "vlan"+fmt.Sprint(l.VLANID))
				if err := makeVLAN(rt, name, parent, uint16(l.VLANID)); err != nil {
					return names, fmt.Errorf("apply network_data: vlan %s: %w", l.ID, err)
				}
			}
			ifc, err := net.InterfaceByName(name)
			if err != nil {
				return names, fmt.Errorf("apply network_data: link %s (%s): %w", l.ID, name, err)
			}
			if l.MTU > 0 && ifc.MTU != l.MTU {
				if err := setMTU(rt, ifc, l.MTU); err != nil {
					return names, fmt.Errorf("apply network_data: link %s MTU %d: %w", l.ID, l.MTU, err)
				}
			}
			if err := rt.LinkUp(ifc); err != nil {
				return names, fmt.Errorf("apply network_data: link %s (%s) up: %w", l.ID, name, err)
			}
			names[l.ID] = name
			log.Info("network_data link", "link", l.ID, logKeyNIC, name, "kind", kind)
		}
	}
	for _, a := range p.Addrs {
		ifc, err := net.InterfaceByName(names[a.Link])
		if err != nil {
			return names, fmt.Errorf("apply network_data: address %s: %w", a.Addr.String(), err)
		}
		addr := a.Addr
		if err := rt.AddrAdd(ifc, &addr); err != nil && !errors.Is(err, os.ErrExist) && !errors.Is(err, syscall.EEXIST) {
			return names, fmt.Errorf("apply network_data: add address %s to %s: %w", addr.String(), ifc.Name, err)
		}
		log.Info("network_data address", logKeyNIC, ifc.Name, logKeyAddr, addr.String())
	}
	for _, r := range p.Routes {
		ifc, err := net.InterfaceByName(names[r.Link])
		if err != nil {
			return names, fmt.Errorf("apply network_data: route %s: %w", r.Dst.String(), err)
		}
		if err := rt.RouteReplace(ifc, r.Dst, r.Gateway); err != nil {
			return names, fmt.Errorf("apply network_data: route %s via %s on %s: %w", r.Dst.String(), r.Gateway, ifc.Name, err)
		}
		log.Info("network_data route", logKeyNIC, ifc.Name, "dst", r.Dst.String(), "gateway", r.Gateway.String())
	}
	if resolvConf != "" && len(p.DNS) > 0 {
		var b strings.Builder
		for _, ns := range p.DNS {
			fmt.Fprintf(&b, "nameserver %s\n", ns)
		}
		if err := os.WriteFile(resolvConf, []byte(b.String()), 0o644); err != nil {
			return names, fmt.Errorf("apply network_data: write %s: %w", resolvConf, err)
		}
	}
	return names, nil
}

// ifName is prefix+suffix when that fits Linux's 15 bytes, else fallback (or a shortened
// prefix+suffix).
func ifName(prefix, suffix, fallback string) string {
	if n := prefix + suffix; len(n) <= 15 {
		return n
	}
	if fallback != "" && len(fallback) <= 15 {
		return fallback
	}
	return (prefix + suffix)[:15]
}

func nested(typ uint16, data []byte) []byte {
	b, _ := netlink.MarshalAttributes([]netlink.Attribute{{Type: typ, Data: data}})
	return b
}

func makeVLAN(rt *rtnl.Conn, name, parent string, id uint16) error {
	p, err := net.InterfaceByName(parent)
	if err != nil {
		return err
	}
	if _, err := net.InterfaceByName(name); err == nil {
		return nil // made by an earlier run
	}
	idb := make([]byte, 2)
	binary.NativeEndian.PutUint16(idb, id)
	return rt.Conn.Link.New(&rtnetlink.LinkMessage{Family: syscall.AF_UNSPEC, Attributes: &rtnetlink.LinkAttributes{
		Name: name, Type: uint32(p.Index), Info: &rtnetlink.LinkInfo{Kind: "vlan", Data: nested(iflaVLANID, idb)}}})
}

func makeBond(rt *rtnl.Conn, name string, mode uint8, members []string) error {
	if _, err := net.InterfaceByName(name); err != nil {
		if err := rt.Conn.Link.New(&rtnetlink.LinkMessage{Family: syscall.AF_UNSPEC, Attributes: &rtnetlink.LinkAttributes{
			Name: name, Info: &rtnetlink.LinkInfo{Kind: "bond", Data: nested(iflaBondMode, []byte{mode})}}}); err != nil {
			return err
		}
	}
	bond, err := net.InterfaceByName(name)
	if err != nil {
		return err
	}
	master := uint32(bond.Index)
	for _, m := range members {
		ifc, err := net.InterfaceByName(m)
		if err != nil {
			return err
		}
		if err := rt.LinkDown(ifc); err != nil { // a member must be down to be enslaved
			return fmt.Errorf("member %s down: %w", m, err)
		}
		if err := rt.Conn.Link.Set(&rtnetlink.LinkMessage{Family: syscall.AF_UNSPEC, Index: uint32(ifc.Index),
			Attributes: &rtnetlink.LinkAttributes{Master: &master}}); err != nil {
			return fmt.Errorf("enslave %s: %w", m, err)
		}
		if err := rt.LinkUp(ifc); err != nil {
			return fmt.Errorf("member %s up: %w", m, err)
		}
	}
	return nil
}

func setMTU(rt *rtnl.Conn, ifc *net.Interface, mtu int) error {
	return rt.Conn.Link.Set(&rtnetlink.LinkMessage{Family: syscall.AF_UNSPEC, Index: uint32(ifc.Index),
		Attributes: &rtnetlink.LinkAttributes{MTU: uint32(mtu)}})
}
