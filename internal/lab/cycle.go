package lab

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/lab/testimage"
)

// Progress is one observation of a node while Cycle drives it.
type Progress struct {
	Node       string
	State      string // provision state
	Step       string // current clean or deploy step, "" when none
	BytesDone  int64  // of the agent's running command (image write, erase)
	BytesTotal int64
	Note       string // a line worth showing: a phase's end, the instance's marker line
}

// Phase is one measured part of a node's cycle.
type Phase struct {
	Name     string
	Duration time.Duration
}

// Result is one node's cycle.
type Result struct {
	Node       string
	Phases     []Phase
	BootedLine string // the instance's marker line from the serial console
	// Properties are the node's properties after inspection (CycleOptions.Inspect), else nil.
	Properties map[string]any
	// ConfigDriveLine is the instance's config drive line (CycleOptions.ConfigDrive).
	ConfigDriveLine string
	Err             error
}

// CycleOptions of Cycle.
type CycleOptions struct {
	// Timeout bounds each phase (default 6m).
	Timeout time.Duration
	// OnProgress is called with every change seen (from several goroutines, one per node).
	OnProgress func(Progress)
	// SkipUndeploy stops at active (after the instance's marker line).
	SkipUndeploy bool
	// NoMarker does not wait for the instance's marker line on the serial console.
	NoMarker bool
	// Inspect inspects the node in band before providing it: manage, inspect (until
	// manageable again), then provide. The node's inspect_interface is set to "agent".
	Inspect bool
	// InstanceInfo, when set, gives the instance_info to deploy with (default: the lab's
	// whole-disk image).
	InstanceInfo func(n Node) map[string]any
	// ConfigDrive, when set, is the deploy's configdrive (Ironic's dict form); the instance's
	// config drive line is then awaited too (Result.ConfigDriveLine).
	ConfigDrive map[string]any
}

// Cycle drives the named nodes at once: manage, inspect (with CycleOptions.Inspect), provide
// (automated cleaning), deploy the
// lab's image, wait for the instance's marker on the serial console, undeploy (cleaning) back
// to available. Each node's phases are timed.
func Cycle(ctx context.Context, st *State, names []string, opts CycleOptions) []Result {
	if opts.Timeout == 0 {
		opts.Timeout = 6 * time.Minute
	}
	if opts.OnProgress == nil {
		opts.OnProgress = func(Progress) {}
	}
	res := make([]Result, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = cycleNode(ctx, st, name, opts)
		}()
	}
	wg.Wait()
	return res
}

func cycleNode(ctx context.Context, st *State, name string, opts CycleOptions) Result {
	r := Result{Node: name}
	n, ok := st.Node(name)
	if !ok {
		r.Err = fmt.Errorf("no lab node %s", name)
		return r
	}
	c := st.Client()
	phase := func(label, verb string, body map[string]any, want string, extra func() error) bool {
		if r.Err != nil {
			return false
		}
		start := time.Now()
		if verb != "" {
			if err := ProvisionVerb(ctx, c, n.UUID, verb, body); err != nil {
				r.Err = fmt.Errorf("%s: %w", label, err)
				return false
			}
		}
		if _, err := WaitState(ctx, c, n.UUID, want, opts.Timeout, func(p Progress) { p.Node = name; opts.OnProgress(p) }); err != nil {
			r.Err = fmt.Errorf("%s: %w", label, err)
			return false
		}
		if extra != nil {
			if err := extra(); err != nil {
				r.Err = fmt.Errorf("%s: %w", label, err)
				return false
			}
		}
		d := time.Since(start)
		r.Phases = append(r.Phases, Phase{label, d})
		opts.OnProgress(Progress{Node: name, State: want, Note: fmt.Sprintf("%s done in %.1f s", label, d.Seconds())})
		return true
	}
	var node map[string]any
	_ = c.Do(ctx, http.MethodGet, "/v1/nodes/"+n.UUID, nil, &node)
	state, _ := node["provision_state"].(string)
	switch state {
	case "active", "deploy failed": // left by an earlier run
		phase("undeploy (cleaning)", "deleted", nil, "available", nil)
		state = "available"
	}
	if opts.Inspect {
		switch state {
		case "enroll", "clean failed", "inspect failed", "available":
			phase("manage", "manage", nil, "manageable", nil)
		}
		if r.Err == nil {
			if err := c.Do(ctx, http.MethodPatch, "/v1/nodes/"+n.UUID, []map[string]any{
				{"op": "add", "path": "/inspect_interface", "value": "agent"}}, nil); err != nil {
				r.Err = fmt.Errorf("set inspect_interface: %w", err)
				return r
			}
		}
		phase("inspect", "inspect", nil, "manageable", func() error {
			var got map[string]any
			if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+n.UUID, nil, &got); err != nil {
				return fmt.Errorf("read the inspected node: %w", err)
			}
			r.Properties, _ = got["properties"].(map[string]any)
			opts.OnProgress(Progress{Node: name, State: "manageable", Note: "inspected: " + FormatProperties(r.Properties)})
			return nil
		})
		phase("provide (cleaning)", "provide", nil, "available", nil)
	} else {
		switch state {
		case "clean failed", "enroll":
			phase("manage", "manage", nil, "manageable", nil)
			phase("provide (cleaning)", "provide", nil, "available", nil)
		case "manageable":
			phase("provide (cleaning)", "provide", nil, "available", nil)
		}
	}
	if r.Err != nil {
		return r
	}
	ii := map[string]any{"image_source": st.Image, "image_checksum": "sha256:" + st.ImageSH, "image_disk_format": "raw"}
	if n.Arch == ArchARM64 {
		ii["image_source"], ii["image_checksum"] = st.ImageARM64, "sha256:"+st.ImageARM64SH
	}
	if opts.InstanceInfo != nil {
		ii = opts.InstanceInfo(n)
	}
	if err := c.Do(ctx, http.MethodPatch, "/v1/nodes/"+n.UUID, []map[string]any{{"op": "add", "path": "/instance_info",
		"value": ii}}, nil); err != nil {
		r.Err = fmt.Errorf("set instance_info: %w", err)
		return r
	}
	serialFrom := fileSize(n.Serial)
	var deployBody map[string]any
	if opts.ConfigDrive != nil {
		deployBody = map[string]any{"configdrive": opts.ConfigDrive}
	}
	phase("deploy", "active", deployBody, "active", nil)
	if !opts.NoMarker && r.Err == nil {
		start := time.Now()
		line, err := WaitSerial(ctx, n.Serial, serialFrom, testimage.Marker, min(opts.Timeout, 3*time.Minute))
		if err != nil {
			r.Err = fmt.Errorf("instance boot: %w", err)
			return r
		}
		r.BootedLine = line
		r.Phases = append(r.Phases, Phase{"instance boot (after active)", time.Since(start)})
		opts.OnProgress(Progress{Node: name, State: "active", Note: "serial: " + line})
		if opts.ConfigDrive != nil {
			line, err := WaitSerial(ctx, n.Serial, serialFrom, testimage.ConfigDriveMarker, min(opts.Timeout, time.Minute))
			if err != nil {
				r.Err = fmt.Errorf("instance config drive: %w", err)
				return r
			}
			r.ConfigDriveLine = line
			opts.OnProgress(Progress{Node: name, State: "active", Note: "serial: " + line})
		}
	}
	if !opts.SkipUndeploy {
		phase("undeploy (cleaning)", "deleted", nil, "available", nil)
	}
	return r
}

// FormatProperties prints a node's properties on one line, keys sorted.
func FormatProperties(props map[string]any) string {
	keys := slices.Sorted(maps.Keys(props))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, props[k]))
	}
	return strings.Join(parts, " ")
}

// ProvisionVerb requests a provision state change, retrying while the node is locked.
func ProvisionVerb(ctx context.Context, c *api.Client, uuid, target string, extra map[string]any) error {
	body := map[string]any{"target": target}
	for k, v := range extra {
		body[k] = v
	}
	for i := 0; ; i++ {
		err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", body, nil)
		if err == nil || !api.IsStatus(err, http.StatusConflict) || i >= 100 {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitState polls a node until its provision state is want and returns the node; a failed
// state (when want is not one) or the time limit ends it with an error naming last_error.
func WaitState(ctx context.Context, c *api.Client, uuid, want string, within time.Duration, progress func(Progress)) (map[string]any, error) {
	deadline := time.Now().Add(within)
	var last Progress
	for {
		var n map[string]any
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &n); err != nil {
			return nil, err
		}
		p := nodeProgress(n)
		if progress != nil && p != last {
			progress(p)
			last = p
		}
		if p.State == want {
			return n, nil
		}
		if strings.HasSuffix(p.State, "failed") && !strings.HasSuffix(want, "failed") {
			return n, fmt.Errorf("node went to %q instead of %q: %v", p.State, want, n["last_error"])
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("node in %q, not %q, after %s (last_error: %v)", p.State, want, within, n["last_error"])
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// nodeProgress reads the provision state, step and the agent's progress from a node.
func nodeProgress(n map[string]any) Progress {
	p := Progress{}
	p.State, _ = n["provision_state"].(string)
	for _, k := range []string{"deploy_step", "clean_step"} {
		if s, _ := n[k].(map[string]any); len(s) > 0 {
			p.Step = fmt.Sprintf("%v.%v", s["interface"], s["step"])
		}
	}
	if dii, _ := n["driver_internal_info"].(map[string]any); dii != nil {
		if pr, _ := dii["ironwork_agent_progress"].(map[string]any); pr != nil {
			done, _ := pr["bytes_done"].(float64)
			total, _ := pr["bytes_total"].(float64)
			p.BytesDone, p.BytesTotal = int64(done), int64(total)
		}
	}
	return p
}

// WaitSerial waits for a whole line holding marker in the serial log after offset, and returns
// it from the marker on. A line is whole once its newline is in the log: QEMU writes the
// console a character at a time as the guest prints it, and a loaded machine can be read
// halfway through a line.
func WaitSerial(ctx context.Context, path string, offset int64, marker string, within time.Duration) (string, error) {
	deadline := time.Now().Add(within)
	partial := ""
	for {
		b, _ := os.ReadFile(path)
		if int64(len(b)) > offset {
			b = b[offset:]
			if i := bytes.Index(b, []byte(marker)); i >= 0 {
				line, _, whole := strings.Cut(string(b[i:]), "\n")
				if whole {
					return strings.TrimSpace(line), nil
				}
				partial = line
			}
		}
		if time.Now().After(deadline) {
			if partial != "" {
				return "", fmt.Errorf("the line of %q on the serial console (%s) did not end within %s: %q", marker, path, within, partial)
			}
			return "", fmt.Errorf("no %q on the serial console (%s) within %s", marker, path, within)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
