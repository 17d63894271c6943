package redfish

import (
	"context"
	"crypto/md5" //nolint:gosec // Ironic accepts md5 image checksums; verification only
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// Firmware is the redfish firmware interface (Ironic's): it reads the BIOS version from the
// System and the BMC's from its Manager, and offers the update step for cleaning, deployment
// and servicing. update takes a list of {component, url, checksum?, wait?}; every checksum is
// verified by downloading the image here before the BMC is asked for anything, then each
// image goes to UpdateService.SimpleUpdate (naming the System in Targets when the BMC serves
// several, as Ironic), and the step waits on the BMC: the conductor's BMC poll reads the
// Redfish task (PollBMC) until it ends; a task that ends in Exception fails the step with the
// BMC's last message, one that runs past TaskTimeout fails it too.
type Firmware struct {
	Interface
	// TaskTimeout bounds one update task (default 30 min).
	TaskTimeout time.Duration
}

var (
	_ conductor.FirmwareReader = Firmware{}
	_ conductor.StepProvider   = Firmware{}
	_ conductor.StepRunner     = Firmware{}
	_ conductor.Validator      = Firmware{}
)

// Firmware component names, as Ironic's.
const (
	ComponentBIOS = "bios"
	ComponentBMC  = "bmc"
	// nicPrefix starts the name of a NIC's component ("nic:<adapter id>").
	nicPrefix = "nic:"
)

// FirmwareComponents implements conductor.FirmwareReader: the System's BiosVersion and its
// first Manager's FirmwareVersion, where the BMC reports them, each with the Manufacturer,
// Model and SerialNumber of the resource that reports it (the vendor, model and
// serial_number of 1.114; empty where the BMC leaves them out).
func (f Firmware) FirmwareComponents(ctx context.Context, t *conductor.Task) ([]ironwork.FirmwareComponent, error) {
	sys, done, err := f.system(ctx, t)
	if err != nil {
		return nil, err
	}
	defer done()
	var out []ironwork.FirmwareComponent
	if sys.BiosVersion != "" {
		out = append(out, ironwork.FirmwareComponent{Component: ComponentBIOS, CurrentVersion: sys.BiosVersion,
			Vendor: sys.Manufacturer, Model: sys.Model, SerialNumber: sys.SerialNumber})
	}
	managers, err := sys.ManagedBy()
	if err == nil && len(managers) > 0 && managers[0].FirmwareVersion != "" {
		m := managers[0]
		out = append(out, ironwork.FirmwareComponent{Component: ComponentBMC, CurrentVersion: m.FirmwareVersion,
			Vendor: m.Manufacturer, Model: m.Model, SerialNumber: m.SerialNumber})
	}
	if len(out) == 0 {
		return nil, ironwork.Errorf(ironwork.EINVALID, "Cannot retrieve firmware for node %s: no supported components", t.Node.UUID)
	}
	return out, nil
}

// Steps implements conductor.StepProvider: update, never automatic.
func (Firmware) Steps(conductor.StepKind) []conductor.Step {
	return []conductor.Step{{Name: conductor.StepFirmwareUpdate}}
}

// RunStep implements conductor.StepRunner: it verifies the checksums, starts the first
// update and leaves its task to the conductor's BMC poll (PollBMC), which starts the next.
func (f Firmware) RunStep(ctx context.Context, t *conductor.Task, step conductor.Step) (bool, error) {
	if step.Name != conductor.StepFirmwareUpdate {
		return false, fmt.Errorf("the redfish firmware interface has no step %q", step.Name)
	}
	updates, err := conductor.FirmwareSettingsArg(step.Args)
	if err != nil {
		return false, err
	}
	for _, u := range updates {
		if u.Checksum == "" {
			continue
		}
		if err := verifyChecksum(ctx, u.URL, u.Checksum); err != nil {
			return false, ironwork.Errorf(ironwork.EINVALID, "firmware image for %s: %s", u.Component, err.Error())
		}
		t.Log.Info("firmware image verified", "component", u.Component, "url", u.URL)
	}
	w := conductor.BMCWait{Data: map[string]any{}}
	done, err := f.next(ctx, t, updates, 0, &w)
	if err != nil || done {
		return false, err
	}
	return true, t.WaitForBMC(ctx, w)
}

// Keys of the firmware step's BMC wait data.
const (
	fwIndex     = "index"      // the update whose task runs
	fwMonitor   = "monitor"    // its task monitor
	fwNotBefore = "not_before" // the end of its "wait", RFC 3339
)

// next starts updates[i] (and the ones after it whose BMC answers without a task) and
// records its task in w; done says nothing is left to wait on.
func (f Firmware) next(ctx context.Context, t *conductor.Task, updates []conductor.FirmwareUpdate, i int, w *conductor.BMCWait) (done bool, err error) {
	sys, release, err := f.system(ctx, t)
	if err != nil {
		return false, err
	}
	defer release()
	for ; i < len(updates); i++ {
		u := updates[i]
		monitor, err := f.start(t, sys, u)
		if err != nil {
			return false, fmt.Errorf("update %s firmware from %s: %w", u.Component, u.URL, err)
		}
		if monitor == "" && u.Wait == 0 {
			continue
		}
		w.Data = map[string]any{fwIndex: float64(i), fwMonitor: monitor}
		if monitor == "" {
			w.Data[fwNotBefore] = time.Now().Add(time.Duration(u.Wait) * time.Second).UTC().Format(time.RFC3339Nano)
		}
		w.Deadline = time.Now().Add(f.taskTimeout() + time.Duration(u.Wait)*time.Second)
		return false, nil
	}
	return true, nil
}

func (f Firmware) taskTimeout() time.Duration {
	if f.TaskTimeout > 0 {
		return f.TaskTimeout
	}
	return 30 * time.Minute
}

var _ conductor.BMCPoller = Firmware{}

// PollBMC implements conductor.BMCPoller: it reads the running update's task; when the task
// ended well (and the update's "wait" passed) the next update starts.
func (f Firmware) PollBMC(ctx context.Context, t *conductor.Task, step conductor.Step, w *conductor.BMCWait) (bool, error) {
	updates, err := conductor.FirmwareSettingsArg(step.Args)
	if err != nil {
		return false, err
	}
	idx, _ := w.Data[fwIndex].(float64)
	i := int(idx)
	if i < 0 || i >= len(updates) {
		return false, fmt.Errorf("firmware update %d of %d: no such update", i, len(updates))
	}
	u := updates[i]
	if monitor, _ := w.Data[fwMonitor].(string); monitor != "" {
		sys, release, err := f.system(ctx, t)
		if err != nil {
			return false, err
		}
		running, doc, err := taskStatus(sys.GetClient(), monitor)
		release()
		if err != nil {
			return false, err
		}
		if running {
			t.Log.Debug("firmware update running", "component", u.Component, "state", doc.TaskState)
			return false, nil
		}
		t.Log.Info("firmware update done", "component", u.Component, "task", monitor)
		delete(w.Data, fwMonitor)
		if u.Wait > 0 {
			w.Data[fwNotBefore] = time.Now().Add(time.Duration(u.Wait) * time.Second).UTC().Format(time.RFC3339Nano)
		}
	}
	if nb, _ := w.Data[fwNotBefore].(string); nb != "" {
		if at, err := time.Parse(time.RFC3339Nano, nb); err == nil && time.Now().Before(at) {
			return false, nil
		}
	}
	return f.next(ctx, t, updates, i+1, w)
}

// start asks the BMC for one SimpleUpdate and returns the monitor of its task ("" when the
// BMC did the update without one).
func (f Firmware) start(t *conductor.Task, sys *schemas.ComputerSystem, u conductor.FirmwareUpdate) (string, error) {
	c := sys.GetClient()
	var root struct {
		Systems, UpdateService struct {
			ODataID string `json:"@odata.id"`
		}
	}
	if err := getJSON(c, "/redfish/v1/", &root); err != nil {
		return "", err
	}
	if root.UpdateService.ODataID == "" {
		return "", ironwork.Errorf(ironwork.EINVALID, "the BMC has no UpdateService")
	}
	var us struct {
		Actions struct {
			SimpleUpdate struct {
				Target string `json:"target"`
			} `json:"#UpdateService.SimpleUpdate"`
		}
	}
	if err := getJSON(c, root.UpdateService.ODataID, &us); err != nil {
		return "", err
	}
	if us.Actions.SimpleUpdate.Target == "" {
		return "", ironwork.Errorf(ironwork.EINVALID, "the BMC's UpdateService offers no SimpleUpdate action")
	}
	body := map[string]any{"ImageURI": u.URL}
	var systems struct {
		Members []json.RawMessage
	}
	if err := getJSON(c, root.Systems.ODataID, &systems); err != nil {
		return "", err
	}
	if len(systems.Members) > 1 {
		body["Targets"] = []string{sys.ODataID}
	}
	resp, err := c.Post(us.Actions.SimpleUpdate.Target, body)
	if err != nil {
		return "", fmt.Errorf("SimpleUpdate: %w", err)
	}
	monitor := resp.Header.Get("Location")
	var task struct {
		ODataID     string `json:"@odata.id"`
		TaskMonitor string
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&task)
	resp.Body.Close()
	if monitor == "" {
		monitor = task.TaskMonitor
	}
	if monitor == "" {
		monitor = task.ODataID
	}
	if monitor == "" {
		t.Log.Info("firmware update done without a task", "component", u.Component)
		return "", nil
	}
	t.Log.Info("firmware update started", "component", u.Component, "task", monitor)
	return monitor, nil
}

// taskDoc is what the interface reads of a Redfish Task.
type taskDoc struct {
	TaskState       string
	PercentComplete *int
	Messages        []struct{ Message string }
}

func (d taskDoc) last() string {
	if len(d.Messages) == 0 {
		return ""
	}
	return d.Messages[len(d.Messages)-1].Message
}

// taskStatus reads a task monitor (or task) once: running until the task ends, an error with
// the BMC's last message when it ended badly.
func taskStatus(c schemas.Client, monitor string) (running bool, doc taskDoc, err error) {
	resp, err := c.Get(monitor)
	if err != nil {
		return false, doc, fmt.Errorf("read task %s: %w", monitor, err)
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc)
	resp.Body.Close()
	running = resp.StatusCode == http.StatusAccepted
	switch schemas.TaskState(doc.TaskState) {
	case schemas.NewTaskState, schemas.RunningTaskState, schemas.StartingTaskState, schemas.PendingTaskState, schemas.StoppingTaskState:
		running = true
	case schemas.ExceptionTaskState, schemas.KilledTaskState, schemas.CancelledTaskState:
		return false, doc, fmt.Errorf("task %s ended in %s: %s", monitor, doc.TaskState, doc.last())
	}
	return running, doc, nil
}

// verifyChecksum downloads an image and compares its digest with checksum: "algo:hex" (md5,
// sha256, sha512) or a bare hex digest whose length says the algorithm.
func verifyChecksum(ctx context.Context, imageURL, checksum string) error {
	algo, want, ok := strings.Cut(checksum, ":")
	if !ok {
		algo, want = "", checksum
	}
	want = strings.ToLower(strings.TrimSpace(want))
	if algo == "" {
		algo = map[int]string{32: "md5", 64: "sha256", 128: "sha512"}[len(want)]
	}
	var h hash.Hash
	switch strings.ToLower(algo) {
	case "md5":
		h = md5.New() //nolint:gosec // see the import
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return fmt.Errorf("checksum %q: use md5, sha256 or sha512 (algo:hex or a bare hex digest)", checksum)
	}
	if _, err := hex.DecodeString(want); err != nil || len(want) != 2*h.Size() {
		return fmt.Errorf("checksum %q is not a %s digest", checksum, algo)
	}
	u, err := url.Parse(imageURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("the image URL %q is not http(s)", imageURL)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, imageURL, nil)
	if err != nil {
		return fmt.Errorf("download %s: %w", imageURL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("download %s: %w", imageURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download %s: HTTP %s", imageURL, resp.Status)
	}
	if _, err := io.Copy(h, resp.Body); err != nil {
		return fmt.Errorf("download %s: %w", imageURL, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("checksum mismatch: %s has %s %s, not %s", imageURL, algo, got, want)
	}
	return nil
}
