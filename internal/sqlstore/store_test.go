package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// forEachDB runs fn against a fresh store of every supported database.
func forEachDB(t *testing.T, fn func(t *testing.T, s *sqlstore.Store)) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			s, err := sqlstore.Open(context.Background(), target.DSN(t), nil)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			fn(t, s)
		})
	}
}

func wantCode(t *testing.T, err error, code ironwork.Code) {
	t.Helper()
	if got := ironwork.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func newNode(name string) *ironwork.Node {
	return &ironwork.Node{Name: name, Driver: "fake-hardware", ProvisionState: ironwork.Enroll,
		Properties: ironwork.JSONObject{"cpus": float64(4)}, DriverInfo: ironwork.JSONObject{"ipmi_password": "s3cret"},
		Interfaces: map[ironwork.InterfaceKind]string{ironwork.PowerInterface: "fake"}}
}

func TestMigrationsAreIdempotentAndRefuseNewerSchema(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := target.DSN(t)
			s, err := sqlstore.Open(ctx, dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			v1, err := s.SchemaVersion(ctx)
			if err != nil || v1 < 1 {
				t.Fatalf("schema version %d, %v", v1, err)
			}
			if err := s.CreateNode(ctx, newNode("keep-me")); err != nil {
				t.Fatal(err)
			}
			s.Close()

			s, err = sqlstore.Open(ctx, dsn, nil)
			if err != nil {
				t.Fatalf("second open: %v", err)
			}
			v2, _ := s.SchemaVersion(ctx)
			if v2 != v1 {
				t.Fatalf("second start changed schema version %d -> %d", v1, v2)
			}
			if _, err := s.GetNode(ctx, "keep-me"); err != nil {
				t.Fatalf("data lost across restart: %v", err)
			}
			if _, err := s.DB().ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)"); err != nil {
				t.Fatal(err)
			}
			s.Close()

			_, err = sqlstore.Open(ctx, dsn, nil)
			if !errors.Is(err, sqlstore.ErrSchemaTooNew) || !strings.Contains(err.Error(), "9999") {
				t.Fatalf("open of a newer schema: %v, want ErrSchemaTooNew naming version 9999", err)
			}
		})
	}
}

// TestLeaseMigrationAfterLaterOnes: a database migrated to 0015 and beyond by a binary
// without 0014 (numbers are given to work done in parallel) still gets 0014, which files the
// leases it holds under an empty subnet.
func TestLeaseMigrationAfterLaterOnes(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := target.DSN(t)
			s, err := sqlstore.Open(ctx, dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Put the lease table back as migration 0003 made it, with a lease in it.
			for _, q := range []string{
				"DROP TABLE dhcp_leases",
				`CREATE TABLE dhcp_leases (mac VARCHAR(17) NOT NULL PRIMARY KEY, ip VARCHAR(45) NOT NULL UNIQUE,
					hostname VARCHAR(255) NOT NULL DEFAULT '', expires_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
				"INSERT INTO dhcp_leases (mac, ip, hostname, expires_at, updated_at) VALUES ('52:54:00:aa:00:09', '10.0.0.9', 'old', 1, 1)",
				"DELETE FROM schema_migrations WHERE version = 14",
			} {
				if _, err := s.DB().ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			s.Close()
			s, err = sqlstore.Open(ctx, dsn, nil)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer s.Close()
			l, ok, err := s.Lease(ctx, "10.0.0.0/24", "52:54:00:aa:00:09")
			if err != nil || !ok || l.IP != "10.0.0.9" || l.Hostname != "old" || l.Subnet != "" {
				t.Fatalf("lease kept by migration 0014: %+v %v %v", l, ok, err)
			}
		})
	}
}

func TestNodeLifecycle(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		n := newNode("node-1")
		n.Traits = []string{"CUSTOM_B", "CUSTOM_A"}
		if err := s.CreateNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		if n.UUID == "" || n.ID == 0 || n.CreatedAt.IsZero() {
			t.Fatalf("create did not fill uuid/id/created_at: %+v", n)
		}
		byName, err := s.GetNode(ctx, "node-1")
		if err != nil {
			t.Fatal(err)
		}
		byUUID, err := s.GetNode(ctx, strings.ToUpper(n.UUID))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(byName, byUUID); diff != "" {
			t.Fatalf("by name and by UUID differ:\n%s", diff)
		}
		if diff := cmp.Diff([]string{"CUSTOM_A", "CUSTOM_B"}, byName.Traits); diff != "" {
			t.Errorf("traits:\n%s", diff)
		}
		if byName.DriverInfo["ipmi_password"] != "s3cret" || byName.Properties["cpus"] != float64(4) {
			t.Errorf("JSON columns did not round-trip: %v %v", byName.DriverInfo, byName.Properties)
		}
		if byName.Interfaces[ironwork.PowerInterface] != "fake" || byName.CreatedAt != n.CreatedAt {
			t.Errorf("interfaces or created_at did not round-trip: %+v", byName)
		}

		wantCode(t, s.CreateNode(ctx, newNode("node-1")), ironwork.ECONFLICT)
		dup := newNode("other")
		dup.UUID = n.UUID
		wantCode(t, s.CreateNode(ctx, dup), ironwork.ECONFLICT)
		bad := newNode("with-chassis")
		bad.ChassisUUID = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
		wantCode(t, s.CreateNode(ctx, bad), ironwork.EINVALID)

		up, err := s.UpdateNode(ctx, n.UUID, func(n *ironwork.Node) error {
			n.Maintenance = true
			n.Traits = []string{"CUSTOM_C"}
			n.Extra = ironwork.JSONObject{"k": "v"}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if up.UpdatedAt == nil || !up.Maintenance {
			t.Fatalf("update result: %+v", up)
		}
		got, _ := s.GetNode(ctx, n.UUID)
		if !got.Maintenance || got.Extra["k"] != "v" || !cmp.Equal(got.Traits, []string{"CUSTOM_C"}) {
			t.Fatalf("update not stored: %+v", got)
		}
		sentinel := ironwork.Errorf(ironwork.ECONFLICT, "refused")
		_, err = s.UpdateNode(ctx, n.UUID, func(n *ironwork.Node) error { n.Maintenance = false; return sentinel })
		if !errors.Is(err, sentinel) {
			t.Fatalf("update error = %v, want the callback's", err)
		}
		if got, _ := s.GetNode(ctx, n.UUID); !got.Maintenance {
			t.Fatal("a refused update was written")
		}

		port := &ironwork.Port{Address: "52:54:00:00:00:01", NodeUUID: n.UUID, PXEEnabled: true}
		if err := s.CreatePort(ctx, port); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteNode(ctx, n.UUID, func(*ironwork.Node) error { return sentinel }); !errors.Is(err, sentinel) {
			t.Fatalf("delete check not applied: %v", err)
		}
		if err := s.DeleteNode(ctx, "node-1", nil); err != nil {
			t.Fatal(err)
		}
		wantCode(t, func() error { _, err := s.GetNode(ctx, n.UUID); return err }(), ironwork.ENOTFOUND)
		wantCode(t, func() error { _, err := s.GetPort(ctx, port.UUID); return err }(), ironwork.ENOTFOUND)
	})
}

func TestNodeListFiltersAndPages(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		for i := range 25 {
			n := newNode(fmt.Sprintf("n%02d", i))
			n.Maintenance = i%5 == 0
			n.Description = fmt.Sprintf("rack %d%%", i%3)
			if i%2 == 0 {
				n.InstanceUUID = fmt.Sprintf("00000000-0000-0000-0000-0000000000%02d", i)
			}
			if i%4 == 0 {
				n.ProvisionState = ironwork.Available
			}
			if err := s.CreateNode(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		names := func(ns []*ironwork.Node) []string {
			var out []string
			for _, n := range ns {
				out = append(out, n.Name)
			}
			return out
		}
		var all []string
		marker := ""
		for pages := 0; pages < 10; pages++ {
			page, err := s.ListNodes(ctx, sqlstore.NodeFilter{}, sqlstore.Page{Limit: 10, Marker: marker, SortKey: "name", SortDir: "desc"})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, names(page)...)
			if len(page) < 10 {
				break
			}
			marker = page[len(page)-1].UUID
		}
		if len(all) != 25 || all[0] != "n24" || all[24] != "n00" {
			t.Fatalf("paged names = %v", all)
		}
		yes := true
		cases := []struct {
			name string
			f    sqlstore.NodeFilter
			want int
		}{
			{"maintenance", sqlstore.NodeFilter{Maintenance: &yes}, 5},
			{"associated", sqlstore.NodeFilter{Associated: &yes}, 13},
			{"provision_state", sqlstore.NodeFilter{ProvisionState: "available"}, 7},
			{"description_contains with a LIKE wildcard", sqlstore.NodeFilter{DescriptionContains: "1%"}, 8},
			{"driver", sqlstore.NodeFilter{Driver: "ipmi"}, 0},
		}
		for _, c := range cases {
			got, err := s.ListNodes(ctx, c.f, sqlstore.Page{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != c.want {
				t.Errorf("%s: %d nodes, want %d", c.name, len(got), c.want)
			}
		}
		_, err := s.ListNodes(ctx, sqlstore.NodeFilter{}, sqlstore.Page{SortKey: "driver_info"})
		wantCode(t, err, ironwork.EINVALID)
		_, err = s.ListNodes(ctx, sqlstore.NodeFilter{}, sqlstore.Page{Marker: "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"})
		wantCode(t, err, ironwork.ENOTFOUND)
	})
}

func TestPortsAndPortgroups(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a, b := newNode("a"), newNode("b")
		for _, n := range []*ironwork.Node{a, b} {
			if err := s.CreateNode(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		wantCode(t, s.CreatePort(ctx, &ironwork.Port{Address: "52:54:00:00:00:01", NodeUUID: "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"}), ironwork.EINVALID)
		g := &ironwork.Portgroup{Name: "bond0", NodeUUID: a.UUID, Address: "52:54:00:00:00:aa", StandalonePortsSupported: true}
		if err := s.CreatePortgroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		p := &ironwork.Port{Address: "52:54:00:00:00:01", NodeUUID: a.UUID, PortgroupUUID: g.UUID}
		if err := s.CreatePort(ctx, p); err != nil {
			t.Fatal(err)
		}
		err := s.CreatePort(ctx, &ironwork.Port{Address: "52:54:00:00:00:01", NodeUUID: b.UUID})
		wantCode(t, err, ironwork.ECONFLICT)
		if !strings.Contains(err.Error(), "MAC address 52:54:00:00:00:01") {
			t.Errorf("duplicate MAC message: %v", err)
		}
		wantCode(t, s.CreatePort(ctx, &ironwork.Port{Address: "52:54:00:00:00:02", NodeUUID: b.UUID, PortgroupUUID: g.UUID}), ironwork.EINVALID)

		got, err := s.GetPort(ctx, p.UUID)
		if err != nil {
			t.Fatal(err)
		}
		if got.NodeUUID != a.UUID || got.PortgroupUUID != g.UUID {
			t.Fatalf("port references: %+v", got)
		}
		byNode, err := s.ListPorts(ctx, sqlstore.PortFilter{NodeUUID: b.UUID}, sqlstore.Page{})
		if err != nil || len(byNode) != 0 {
			t.Fatalf("ports of b: %v %v", byNode, err)
		}
		found, err := s.NodeByPortAddress(ctx, []string{"de:ad:be:ef:00:00", "52:54:00:00:00:01"})
		if err != nil || found.UUID != a.UUID {
			t.Fatalf("node by MAC: %v %v", found, err)
		}
		wantCode(t, s.DeletePortgroup(ctx, g.UUID), ironwork.EINVALID)
		if _, err := s.UpdatePort(ctx, p.UUID, func(p *ironwork.Port) error { p.PortgroupUUID = ""; return nil }); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePortgroup(ctx, "bond0"); err != nil {
			t.Fatal(err)
		}

		c := &ironwork.Chassis{Description: "rack 1"}
		if err := s.CreateChassis(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateNode(ctx, b.UUID, func(n *ironwork.Node) error { n.ChassisUUID = c.UUID; return nil }); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.DeleteChassis(ctx, c.UUID), ironwork.EINVALID)
		inChassis, _ := s.ListNodes(ctx, sqlstore.NodeFilter{ChassisUUID: c.UUID}, sqlstore.Page{})
		if len(inChassis) != 1 || inChassis[0].ChassisUUID != c.UUID {
			t.Fatalf("nodes in chassis: %v", inChassis)
		}
	})
}

// TestConcurrentUpdatesLoseNothing has many writers increment one counter; a lost update would
// leave it short.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		n := newNode("counter")
		n.Extra = ironwork.JSONObject{"count": float64(0)}
		if err := s.CreateNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		const writers = 40
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.UpdateNode(ctx, n.UUID, func(n *ironwork.Node) error {
					n.Extra["count"] = n.Extra["count"].(float64) + 1
					return nil
				})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got, _ := s.GetNode(ctx, n.UUID)
		if got.Extra["count"] != float64(writers) {
			t.Fatalf("count = %v after %d concurrent increments", got.Extra["count"], writers)
		}
	})
}

func TestConductorsAndHistory(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		c := &ironwork.Conductor{Hostname: "c1", ConductorGroup: "rack1", Drivers: []string{"ipmi"}}
		if err := s.RegisterConductor(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := s.RegisterConductor(ctx, c); err != nil {
			t.Fatalf("re-register: %v", err)
		}
		if err := s.TouchConductor(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.TouchConductor(ctx, "nope"), ironwork.ENOTFOUND)
		got, err := s.GetConductor(ctx, "c1")
		if err != nil || got.ConductorGroup != "rack1" || !cmp.Equal(got.Drivers, []string{"ipmi"}) || !got.Online {
			t.Fatalf("conductor: %+v %v", got, err)
		}
		if err := s.UnregisterConductor(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetConductor(ctx, "c1"); got.Online {
			t.Fatal("unregistered conductor still online")
		}
		n := newNode("h")
		if err := s.CreateNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		for i, ev := range []string{"first", "second"} {
			if err := s.AddNodeHistory(ctx, &ironwork.NodeHistoryEvent{UUID: fmt.Sprintf("1be26c0b-03f2-4d2e-ae87-c02d7f33c12%d", i),
				NodeID: n.ID, Event: ev, EventType: "provisioning", Severity: "INFO", Conductor: "c1"}); err != nil {
				t.Fatal(err)
			}
		}
		hist, err := s.NodeHistory(ctx, n.ID)
		if err != nil || len(hist) != 2 || hist[0].Event != "first" || hist[1].Conductor != "c1" {
			t.Fatalf("history: %+v %v", hist, err)
		}
	})
}

func TestDHCPLeases(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		const rack1, rack2 = "10.0.0.0/24", "10.1.0.0/24"
		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
		a := sqlstore.DHCPLease{MAC: "52:54:00:AA:00:01", Subnet: rack1, IP: "10.0.0.10", Hostname: "a", Expires: exp}
		if err := s.PutLease(ctx, a); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Lease(ctx, rack1, "52:54:00:aa:00:01")
		if err != nil || !ok || got.IP != "10.0.0.10" || !got.Expires.Equal(exp) || got.MAC != "52:54:00:aa:00:01" || got.Subnet != rack1 {
			t.Fatalf("lease: %+v %v %v", got, ok, err)
		}
		if _, ok, _ := s.Lease(ctx, rack2, "52:54:00:aa:00:01"); ok {
			t.Fatal("a lease on one subnet was found on another")
		}
		// Another MAC cannot take a leased address, on any subnet.
		for _, sn := range []string{rack1, rack2} {
			err := s.PutLease(ctx, sqlstore.DHCPLease{MAC: "52:54:00:aa:00:02", Subnet: sn, IP: "10.0.0.10", Expires: exp})
			if !errors.Is(err, sqlstore.ErrAddressInUse) {
				t.Fatalf("two MACs got one address (subnet %s): %v", sn, err)
			}
		}
		// A MAC moving to a new address on its subnet frees the old one.
		a.IP = "10.0.0.11"
		if err := s.PutLease(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.LeaseByIP(ctx, "10.0.0.10"); ok {
			t.Fatal("old address still leased")
		}
		if l, ok, _ := s.LeaseByIP(ctx, "10.0.0.11"); !ok || l.MAC != "52:54:00:aa:00:01" {
			t.Fatalf("by IP: %+v %v", l, ok)
		}
		// The same MAC holds a second lease on another subnet, keeping the first.
		if err := s.PutLease(ctx, sqlstore.DHCPLease{MAC: a.MAC, Subnet: rack2, IP: "10.1.0.10", Expires: exp}); err != nil {
			t.Fatal(err)
		}
		if l, ok, _ := s.Lease(ctx, rack1, a.MAC); !ok || l.IP != "10.0.0.11" {
			t.Fatalf("lease on the first subnet after one on the second: %+v %v", l, ok)
		}
		if err := s.PutLease(ctx, sqlstore.DHCPLease{MAC: "52:54:00:aa:00:02", Subnet: rack1, IP: "10.0.0.10", Expires: exp}); err != nil {
			t.Fatal(err)
		}
		all, err := s.Leases(ctx)
		if err != nil || len(all) != 3 || all[0].MAC != "52:54:00:aa:00:01" || all[0].Subnet != rack1 || all[1].Subnet != rack2 {
			t.Fatalf("leases: %+v %v", all, err)
		}
		if err := s.DeleteLease(ctx, rack1, "52:54:00:AA:00:01"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Lease(ctx, rack1, "52:54:00:aa:00:01"); ok {
			t.Fatal("deleted lease still there")
		}
		if _, ok, _ := s.Lease(ctx, rack2, "52:54:00:aa:00:01"); !ok {
			t.Fatal("deleting the lease on one subnet deleted the other")
		}

		// A lease written before leases had subnets (migration 0014 gives it an empty
		// one) is the MAC's lease on any subnet until the server files it under one.
		if _, err := s.DB().ExecContext(ctx, rebind(s, "INSERT INTO dhcp_leases (mac, subnet, ip, hostname, expires_at, updated_at) VALUES (?, '', ?, '', ?, 0)"),
			"52:54:00:aa:00:03", "10.0.0.30", exp.UnixMicro()); err != nil {
			t.Fatal(err)
		}
		if l, ok, _ := s.Lease(ctx, rack1, "52:54:00:aa:00:03"); !ok || l.IP != "10.0.0.30" || l.Subnet != "" {
			t.Fatalf("old lease not found: %+v %v", l, ok)
		}
		if err := s.PutLease(ctx, sqlstore.DHCPLease{MAC: "52:54:00:aa:00:03", Subnet: rack1, IP: "10.0.0.30", Expires: exp}); err != nil {
			t.Fatal(err)
		}
		if l, ok, _ := s.Lease(ctx, rack1, "52:54:00:aa:00:03"); !ok || l.Subnet != rack1 {
			t.Fatalf("old lease not filed under its subnet: %+v %v", l, ok)
		}
		if _, ok, _ := s.Lease(ctx, "", "52:54:00:aa:00:03"); ok {
			t.Fatal("the old row of the lease is still there")
		}
	})
}

func TestDHCP6Leases(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
		a := sqlstore.DHCP6Lease{Client: "000100011/00000001", MAC: "52:54:00:AA:00:01", IP: "fd00:1::100", Expires: exp}
		if err := s.PutLease6(ctx, a); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Lease6(ctx, a.Client)
		if err != nil || !ok || got.IP != "fd00:1::100" || !got.Expires.Equal(exp) || got.MAC != "52:54:00:aa:00:01" {
			t.Fatalf("lease: %+v %v %v", got, ok, err)
		}
		// Another client cannot take a leased address.
		if err := s.PutLease6(ctx, sqlstore.DHCP6Lease{Client: "other/00000001", IP: "fd00:1::100", Expires: exp}); !errors.Is(err, sqlstore.ErrAddressInUse) {
			t.Fatalf("two clients got one address: %v", err)
		}
		// A client moving to a new address frees the old one.
		a.IP = "fd00:1::101"
		if err := s.PutLease6(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Lease6ByIP(ctx, "fd00:1::100"); ok {
			t.Fatal("old address still leased")
		}
		if l, ok, _ := s.Lease6ByIP(ctx, "fd00:1::101"); !ok || l.Client != a.Client {
			t.Fatalf("by IP: %+v %v", l, ok)
		}
		if err := s.PutLease6(ctx, sqlstore.DHCP6Lease{Client: "other/00000001", IP: "fd00:1::100", Expires: exp}); err != nil {
			t.Fatal(err)
		}
		all, err := s.Leases6(ctx)
		if err != nil || len(all) != 2 || all[0].Client != a.Client || all[1].MAC != "" {
			t.Fatalf("leases: %+v %v", all, err)
		}
		if err := s.DeleteLease6(ctx, a.Client); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Lease6(ctx, a.Client); ok {
			t.Fatal("deleted lease still there")
		}
	})
}

// rebind turns ? placeholders into PostgreSQL's $n for statements a test runs directly.
func rebind(s *sqlstore.Store, q string) string {
	if s.Dialect() != sqlstore.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// TestMarkerPagesEqualTheWholeList walks node lists page by page from markers, for sort keys
// with repeated, empty and unique values, both directions and several page sizes, and wants
// exactly the whole list's order: no node twice, none skipped at a page boundary.
func TestMarkerPagesEqualTheWholeList(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		states := []ironwork.ProvisionState{ironwork.Enroll, ironwork.Available, ironwork.Manageable}
		for i := range 23 {
			n := newNode(fmt.Sprintf("m%02d", (i*7)%23))
			if i%5 == 0 {
				n.Name = "" // sorts as ''
			}
			n.ProvisionState = states[i%3]
			n.ResourceClass = fmt.Sprintf("rc%d", i%4)
			if err := s.CreateNode(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		uuids := func(ns []*ironwork.Node) []string {
			var out []string
			for _, n := range ns {
				out = append(out, n.UUID)
			}
			return out
		}
		for _, key := range []string{"id", "name", "provision_state", "resource_class", "uuid", "created_at"} {
			for _, dir := range []string{"asc", "desc"} {
				whole, err := s.ListNodes(ctx, sqlstore.NodeFilter{}, sqlstore.Page{SortKey: key, SortDir: dir})
				if err != nil {
					t.Fatal(err)
				}
				for _, limit := range []int{1, 4, 7} {
					var paged []*ironwork.Node
					marker := ""
					for pages := 0; pages < 30; pages++ {
						page, err := s.ListNodes(ctx, sqlstore.NodeFilter{}, sqlstore.Page{Limit: limit, Marker: marker, SortKey: key, SortDir: dir})
						if err != nil {
							t.Fatal(err)
						}
						paged = append(paged, page...)
						if len(page) < limit {
							break
						}
						marker = page[len(page)-1].UUID
					}
					if !slices.Equal(uuids(paged), uuids(whole)) {
						t.Errorf("sort %s %s, pages of %d: %d nodes paged, %d in the whole list, or in another order",
							key, dir, limit, len(paged), len(whole))
					}
				}
			}
		}
	})
}

// TestTraitNamedTwice creates a node whose traits name one twice, and sets them so again: on
// both databases the write succeeds and the trait is stored once.
func TestTraitNamedTwice(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		n := newNode("twice")
		n.Traits = []string{"CUSTOM_A", "CUSTOM_A", "CUSTOM_B"}
		if err := s.CreateNode(ctx, n); err != nil {
			t.Fatalf("create: %v", err)
		}
		got, err := s.GetNode(ctx, "twice")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Traits, []string{"CUSTOM_A", "CUSTOM_B"}) {
			t.Errorf("traits %v, want [CUSTOM_A CUSTOM_B]", got.Traits)
		}
		if _, err := s.UpdateNode(ctx, "twice", func(n *ironwork.Node) error {
			n.Traits = []string{"CUSTOM_C", "CUSTOM_C"}
			return nil
		}); err != nil {
			t.Fatalf("update: %v", err)
		}
		if got, err = s.GetNode(ctx, "twice"); err != nil || !slices.Equal(got.Traits, []string{"CUSTOM_C"}) {
			t.Errorf("traits %v (%v), want [CUSTOM_C]", got.Traits, err)
		}
	})
}

// TestTraitsInEveryNodeRead checks that each way of reading nodes returns their traits, in
// order, and an empty (not nil) list for a node without any: the traits come in the node's own
// row (one query), not from a second read.
func TestTraitsInEveryNodeRead(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		with, without := newNode("with-traits"), newNode("without-traits")
		with.Traits = []string{"CUSTOM_Z", "CUSTOM_A", "HW_CPU_X86_AVX2"}
		for _, n := range []*ironwork.Node{with, without} {
			if err := s.CreateNode(ctx, n); err != nil {
				t.Fatalf("create %s: %v", n.Name, err)
			}
		}
		want := map[string][]string{
			"with-traits":    {"CUSTOM_A", "CUSTOM_Z", "HW_CPU_X86_AVX2"},
			"without-traits": {},
		}
		check := func(how string, nodes ...*ironwork.Node) {
			t.Helper()
			if len(nodes) != 2 {
				t.Fatalf("%s: %d nodes, want 2", how, len(nodes))
			}
			for _, n := range nodes {
				if n.Traits == nil || !slices.Equal(n.Traits, want[n.Name]) {
					t.Errorf("%s: node %s traits %#v, want %#v", how, n.Name, n.Traits, want[n.Name])
				}
			}
		}
		g1, err := s.GetNode(ctx, with.UUID)
		if err != nil {
			t.Fatal(err)
		}
		g2, err := s.GetNodeByID(ctx, without.ID)
		if err != nil {
			t.Fatal(err)
		}
		check("GetNode, GetNodeByID", g1, g2)
		listed, err := s.ListNodes(ctx, sqlstore.NodeFilter{}, sqlstore.Page{})
		if err != nil {
			t.Fatal(err)
		}
		check("ListNodes", listed...)
		byID, err := s.NodesByID(ctx, []int64{with.ID, without.ID})
		if err != nil {
			t.Fatal(err)
		}
		check("NodesByID", byID...)
		for how, read := range map[string]func() ([]*sqlstore.RawNode, error){
			"ListNodesRaw": func() ([]*sqlstore.RawNode, error) {
				return s.ListNodesRaw(ctx, sqlstore.NodeFilter{}, sqlstore.Page{})
			},
			"NodesRawByID": func() ([]*sqlstore.RawNode, error) { return s.NodesRawByID(ctx, []int64{with.ID, without.ID}) },
		} {
			raws, err := read()
			if err != nil {
				t.Fatalf("%s: %v", how, err)
			}
			var nodes []*ironwork.Node
			for _, r := range raws {
				nodes = append(nodes, r.Node)
			}
			check(how, nodes...)
		}
		// The update path reads the node (FOR UPDATE on PostgreSQL) and hands it to fn.
		var seen []string
		updated, err := s.UpdateNode(ctx, with.UUID, func(n *ironwork.Node) error {
			seen = slices.Clone(n.Traits)
			n.Traits = append(n.Traits, "CUSTOM_B")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seen, want["with-traits"]) {
			t.Errorf("UpdateNode handed traits %v, want %v", seen, want["with-traits"])
		}
		want["with-traits"] = []string{"CUSTOM_A", "CUSTOM_B", "CUSTOM_Z", "HW_CPU_X86_AVX2"}
		if again, err := s.GetNode(ctx, updated.UUID); err != nil || !slices.Equal(again.Traits, want["with-traits"]) {
			t.Errorf("after update: traits %v (%v), want %v", again.Traits, err, want["with-traits"])
		}
	})
}

// TestWarmOpensConnections: a PostgreSQL store's Warm leaves the connections it opened in the
// pool, open, each a backend of the store's database; on SQLite it does nothing.
func TestWarmOpensConnections(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		if err := s.CreateNode(ctx, newNode("warm")); err != nil {
			t.Fatal(err)
		}
		if err := s.Warm(ctx, 6); err != nil {
			t.Fatalf("warm: %v", err)
		}
		if s.Dialect() != sqlstore.Postgres {
			return
		}
		if st := s.DB().Stats(); st.OpenConnections < 6 || st.Idle < 6 {
			t.Fatalf("after warming 6: %d open, %d idle", st.OpenConnections, st.Idle)
		}
		var backends int
		if err := s.DB().QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()").Scan(&backends); err != nil {
			t.Fatal(err)
		}
		if backends < 6 {
			t.Fatalf("%d backends of the database after warming 6", backends)
		}
		if err := s.Warm(ctx, 100); err != nil { // more than the pool holds: warms the pool
			t.Fatalf("warm 100: %v", err)
		}
		if st := s.DB().Stats(); st.OpenConnections != 32 {
			t.Fatalf("after warming 100: %d open, want the pool's 32", st.OpenConnections)
		}
	})
}
