package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/image/ocitest"
	"github.com/ironwork/ironwork/internal/server"
)

// TestDirectDeployFromOCI deploys a node from an oci:// image in a registry on loopback that
// demands bearer tokens: the conductor resolves the tag to the artifact's blob with the
// node's image_pull_secret, ironwork-agent (a process, with a file as its disk) downloads
// the blob with the registry's token and verifies it against the digest. Then bad input: a
// container image and a wrong pull secret fail the deploy with a clear last_error before
// the disk is touched.
func TestDirectDeployFromOCI(t *testing.T) {
	dir := t.TempDir()
	mac := hostMAC(t)
	raw, _ := qemuImage(t, dir)
	agent := buildAgent(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := ocitest.New()
	reg.User, reg.Password = "robot", "pull-s3cret"
	reg.Start(ln)
	defer reg.Close()
	reg.Push("lab/disk", "whole", raw, ocitest.Artifact{DiskType: "raw"})
	reg.Push("lab/app", "v1", []byte("rootfs"), ocitest.Artifact{LayerMediaType: "application/vnd.oci.image.layer.v1.tar+gzip"})
	secret := base64.StdEncoding.EncodeToString([]byte("robot:pull-s3cret"))

	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, bytes.Repeat([]byte{0xAA}, 16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "sqlite://"+filepath.Join(dir, "db"), func(c *server.Config) {
		c.AgentPowerOffTimeout = server.Duration{Duration: 2 * time.Second}
		c.OCIPlainHTTPRegistries = []string{reg.Host()}
	})
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	ctx := context.Background()
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "oci-1", "driver": "fake-hardware",
		"deploy_interface": "direct", "boot_interface": "fake",
		"instance_info": map[string]any{"image_source": "oci://" + reg.Host() + "/lab/disk:whole", "image_pull_secret": secret}}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	if ii := fmt.Sprint(node["instance_info"]); strings.Contains(ii, secret) {
		t.Fatalf("the API shows the pull secret: %s", ii)
	}
	if err := c.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": mac}, nil); err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid+"/validate", nil, &v); err != nil {
		t.Fatal(err)
	}
	if d, _ := v["deploy"].(map[string]any); d["result"] != true {
		t.Fatalf("validate deploy: %v (an oci:// image needs no image_checksum)", d)
	}
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 10*time.Second)
	provisionVerb(t, c, uuid, "provide")
	waitState(t, c, uuid, "clean wait", 10*time.Second)
	a := startAgent(t, agent, srv.URL(), disk)
	waitState(t, c, uuid, "available", 60*time.Second)
	a.stop()

	start := time.Now()
	tokens, blobs := reg.TokenRequests.Load(), reg.BlobGets.Load()
	provisionVerb(t, c, uuid, "active")
	waitState(t, c, uuid, "wait call-back", 10*time.Second)
	a = startAgent(t, agent, srv.URL(), disk)
	n := waitState(t, c, uuid, "active", 90*time.Second)
	a.stop()
	t.Logf("deploy from oci:// with a bearer token: %.1f s (%d token requests, %d blob GETs)", time.Since(start).Seconds(),
		reg.TokenRequests.Load()-tokens, reg.BlobGets.Load()-blobs)
	b := mapDisk(t, disk)
	if !bytes.Equal(b[:len(raw)], raw) {
		t.Fatal("the disk does not hold the registry's image")
	}
	if reg.BlobGets.Load() == blobs {
		t.Fatal("the agent did not download the blob from the registry")
	}
	if out := a.out.String(); strings.Contains(out, "Bearer ") || strings.Contains(out, secret) {
		t.Errorf("the agent's log carries a credential:\n%s", out)
	}
	_ = n

	provisionVerb(t, c, uuid, "deleted")
	waitState(t, c, uuid, "clean wait", 20*time.Second)
	a = startAgent(t, agent, srv.URL(), disk)
	waitState(t, c, uuid, "available", 60*time.Second)
	a.stop()

	for _, bad := range []struct {
		name string
		ii   map[string]any
		want string
	}{
		{"container image", map[string]any{"image_source": "oci://" + reg.Host() + "/lab/app:v1", "image_pull_secret": secret}, "not a disk image artifact"},
		{"wrong pull secret", map[string]any{"image_source": "oci://" + reg.Host() + "/lab/disk:whole", "image_pull_secret": "robot:wrong"}, "registry authentication failed"},
	} {
		marker := bytes.Repeat([]byte("UNTOUCHED"), 1000)
		f, err := os.OpenFile(disk, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(marker, 0)
		f.Close()
		if err := c.Do(ctx, http.MethodPatch, "/v1/nodes/"+uuid, []map[string]any{{"op": "add", "path": "/instance_info", "value": bad.ii}}, nil); err != nil {
			t.Fatal(err)
		}
		provisionVerb(t, c, uuid, "active")
		waitState(t, c, uuid, "wait call-back", 10*time.Second)
		a = startAgent(t, agent, srv.URL(), disk)
		n = waitState(t, c, uuid, "deploy failed", 60*time.Second)
		a.stop()
		le := fmt.Sprint(n["last_error"])
		if !strings.Contains(le, bad.want) || strings.Contains(le, "pull-s3cret") || strings.Contains(le, "wrong") {
			t.Errorf("%s: last_error %q, want %q and no credential", bad.name, le, bad.want)
		}
		t.Logf("%s: last_error %s", bad.name, le)
		b = mapDisk(t, disk)
		if !bytes.Equal(b[:len(marker)], marker) {
			t.Errorf("%s: the disk was touched", bad.name)
		}
		provisionVerb(t, c, uuid, "deleted")
		waitState(t, c, uuid, "clean wait", 20*time.Second)
		a = startAgent(t, agent, srv.URL(), disk)
		waitState(t, c, uuid, "available", 60*time.Second)
		a.stop()
	}
}

// TestRamdiskDeploy: a node with the ramdisk deploy interface goes to active without an
// agent once its instance boot is set up, refuses a deploy without kernel and ramdisk with
// Ironic's error, and comes back to available on undeploy.
func TestRamdiskDeploy(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "sqlite://"+filepath.Join(dir, "db"))
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	ctx := context.Background()
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "live-1", "driver": "fake-hardware",
		"deploy_interface": "ramdisk", "boot_interface": "fake"}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 10*time.Second)
	provisionVerb(t, c, uuid, "provide")
	waitState(t, c, uuid, "available", 10*time.Second)
	err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "active"}, nil)
	if err == nil || !strings.Contains(err.Error(), "instance_info.kernel and instance_info.ramdisk") {
		t.Fatalf("deploy without kernel and ramdisk: %v", err)
	}
	if err := c.Do(ctx, http.MethodPatch, "/v1/nodes/"+uuid, []map[string]any{{"op": "add", "path": "/instance_info",
		"value": map[string]any{"kernel": "http://images.example/live.vmlinuz", "ramdisk": "http://images.example/live.initrd"}}}, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	provisionVerb(t, c, uuid, "active")
	n := waitState(t, c, uuid, "active", 20*time.Second)
	t.Logf("ramdisk deploy on fake hardware: %.2f s", time.Since(start).Seconds())
	if n["power_state"] != "power on" {
		t.Errorf("the deployed node is %v: %v", n["power_state"], n)
	}

	// Servicing the running ramdisk instance without the deploy ramdisk (1.108): out-of-band
	// steps run, the instance is neither rebooted nor given another boot, and it is active again.
	before := n["driver_internal_info"]
	cs := &api.Client{BaseURL: srv.URL(), Version: "1.108"}
	if err := cs.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "service",
		"disable_ramdisk": true, "service_steps": []map[string]any{{"interface": "bios", "step": "noop"}}}, nil); err != nil {
		t.Fatalf("service without the ramdisk: %v", err)
	}
	n = waitState(t, c, uuid, "active", 20*time.Second)
	if n["power_state"] != "power on" || n["last_error"] != nil {
		t.Errorf("after servicing: power %v, last_error %v", n["power_state"], n["last_error"])
	}
	after := n["driver_internal_info"].(map[string]any)
	for k, v := range before.(map[string]any) {
		if k == "service_steps" || k == "service_step_index" {
			continue
		}
		if fmt.Sprint(after[k]) != fmt.Sprint(v) {
			t.Errorf("servicing changed driver_internal_info.%s: %v, then %v", k, v, after[k])
		}
	}
	provisionVerb(t, c, uuid, "deleted")
	n = waitState(t, c, uuid, "available", 20*time.Second)
	if n["power_state"] != "power off" {
		t.Errorf("the undeployed node is %v", n["power_state"])
	}
}
