package sqlstore_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

func ptr[T any](v T) *T { return &v }

// TestBIOSSettingsAndFirmware stores, replaces and reads a node's BIOS settings and firmware
// components, and deletes them with the node.
func TestBIOSSettingsAndFirmware(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		n := newNode("bios-1")
		if err := s.CreateNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		first := []ironwork.BIOSSetting{
			{Name: "ProcTurboMode", Value: ptr("Enabled"), AttributeType: ptr("Enumeration"), AllowableValues: []string{"Enabled", "Disabled"},
				ReadOnly: ptr(false), ResetRequired: ptr(true), Unique: ptr(false)},
			{Name: "NetworkBootRetries", Value: ptr("3"), AttributeType: ptr("Integer"), LowerBound: ptr(int64(0)), UpperBound: ptr(int64(10))},
			{Name: "Legacy", Value: nil},
		}
		if err := s.PutBIOSSettings(ctx, n.ID, first); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListBIOSSettings(ctx, n.ID)
		if err != nil {
			t.Fatal(err)
		}
		ignore := cmpopts.IgnoreFields(ironwork.BIOSSetting{}, "CreatedAt", "UpdatedAt")
		want := []ironwork.BIOSSetting{first[2], first[1], first[0]}
		if diff := cmp.Diff(want, got, ignore); diff != "" {
			t.Fatalf("settings (-want +got):\n%s", diff)
		}
		if got[0].UpdatedAt != nil || got[0].CreatedAt.IsZero() {
			t.Fatalf("new setting: created %v updated %v", got[0].CreatedAt, got[0].UpdatedAt)
		}
		second := []ironwork.BIOSSetting{{Name: "ProcTurboMode", Value: ptr("Disabled"), AttributeType: ptr("Enumeration")}}
		if err := s.PutBIOSSettings(ctx, n.ID, second); err != nil {
			t.Fatal(err)
		}
		one, err := s.GetBIOSSetting(ctx, n.ID, n.UUID, "ProcTurboMode")
		if err != nil || *one.Value != "Disabled" || one.UpdatedAt == nil || !one.CreatedAt.Equal(got[2].CreatedAt) {
			t.Fatalf("replaced setting: %+v, %v", one, err)
		}
		_, err = s.GetBIOSSetting(ctx, n.ID, n.UUID, "Legacy")
		wantCode(t, err, ironwork.ENOTFOUND)

		if err := s.PutFirmwareComponents(ctx, n.ID, []ironwork.FirmwareComponent{{Component: "bios", CurrentVersion: "1.0"}, {Component: "bmc", CurrentVersion: "2.0"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutFirmwareComponents(ctx, n.ID, []ironwork.FirmwareComponent{{Component: "bios", CurrentVersion: "1.1", Vendor: "Contoso", Model: "Ironwork Lab", SerialNumber: "SN-1"}, {Component: "bmc", CurrentVersion: "2.0"}}); err != nil {
			t.Fatal(err)
		}
		fw, err := s.ListFirmwareComponents(ctx, n.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantFW := []ironwork.FirmwareComponent{{Component: "bios", InitialVersion: "1.0", CurrentVersion: "1.1", LastVersionFlashed: ptr("1.1"), Vendor: "Contoso", Model: "Ironwork Lab", SerialNumber: "SN-1"},
			{Component: "bmc", InitialVersion: "2.0", CurrentVersion: "2.0"}}
		if diff := cmp.Diff(wantFW, fw, cmpopts.IgnoreFields(ironwork.FirmwareComponent{}, "CreatedAt", "UpdatedAt")); diff != "" {
			t.Fatalf("firmware (-want +got):\n%s", diff)
		}
		if err := s.DeleteNode(ctx, n.UUID, nil); err != nil {
			t.Fatal(err)
		}
		if left, _ := s.ListBIOSSettings(ctx, n.ID); len(left) != 0 {
			t.Fatalf("settings outlive their node: %v", left)
		}
		if left, _ := s.ListFirmwareComponents(ctx, n.ID); len(left) != 0 {
			t.Fatalf("firmware outlives its node: %v", left)
		}
	})
}
