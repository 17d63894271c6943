package vbmc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Firmware updates, as a Redfish BMC serves them: the UpdateService with a FirmwareInventory
// (each machine's BIOS, BMC and NIC) and the SimpleUpdate action. SimpleUpdate downloads the
// image (only from loopback or private addresses, as virtual media), answers 202 with a task
// monitor, and the update runs as a Task under /redfish/v1/TaskService/Tasks for
// Config.UpdateSeconds; then the component reports the version the image names. An image is a
// file whose first line is "ironwork-firmware <BIOS|BMC|NIC> <version>": anything else ends
// the task in Exception with the reason, as a BMC refuses an image for another device.

// firmwareComponents are the components of a machine's FirmwareInventory.
var firmwareComponents = []string{"BIOS", "BMC", "NIC"}

// firmwareImageMax bounds a firmware image the virtual BMC downloads.
const firmwareImageMax = 64 << 20

// Firmware returns a machine's firmware versions by component (BIOS, BMC, NIC).
func (m *Machine) Firmware() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for _, c := range firmwareComponents {
		out[c] = m.firmwareVersion(c)
	}
	return out
}

// firmwareVersion reads one version; the caller holds m.mu.
func (m *Machine) firmwareVersion(component string) string {
	if v, ok := m.firmware[component]; ok {
		return v
	}
	return "1.0.0"
}

func (m *Machine) setFirmware(component, version string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.firmware == nil {
		m.firmware = map[string]string{}
	}
	m.firmware[component] = version
}

// fwTask is one firmware update task.
type fwTask struct {
	ID        string
	Machine   string
	Image     string
	State     string // New, Running, Completed, Exception
	Percent   int
	Message   string
	StartTime time.Time
	EndTime   time.Time
}

// taskService holds the firmware update tasks.
type taskService struct {
	mu     sync.Mutex
	tasks  []*fwTask
	closed chan struct{}
	wg     sync.WaitGroup
}

func newTaskService() *taskService { return &taskService{closed: make(chan struct{})} }

func (s *taskService) close() {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	s.wg.Wait()
}

func (s *taskService) get(id string) (fwTask, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tasks {
		if t.ID == id {
			return *t, true
		}
	}
	return fwTask{}, false
}

func (s *taskService) update(id string, fn func(t *fwTask)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tasks {
		if t.ID == id {
			fn(t)
		}
	}
}

func taskDoc(t fwTask) map[string]any {
	path := "/redfish/v1/TaskService/Tasks/" + t.ID
	status := "OK"
	if t.State == "Exception" {
		status = "Critical"
	}
	doc := map[string]any{"@odata.id": path, "@odata.type": "#Task.v1_4_3.Task", "Id": t.ID, "Name": "Firmware update of " + t.Machine,
		"TaskState": t.State, "TaskStatus": status, "PercentComplete": t.Percent, "TaskMonitor": "/redfish/v1/TaskService/TaskMonitors/" + t.ID,
		"StartTime": t.StartTime.UTC().Format(time.RFC3339), "Payload": map[string]any{"TargetUri": "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"}}
	if t.Message != "" {
		doc["Messages"] = []map[string]any{{"MessageId": "Update.1.0.UpdateInProgress", "Message": t.Message}}
		if t.State == "Exception" {
			doc["Messages"] = []map[string]any{{"MessageId": "Update.1.0.ApplyFailed", "Message": t.Message, "Severity": "Critical"}}
		}
	}
	if !t.EndTime.IsZero() {
		doc["EndTime"] = t.EndTime.UTC().Format(time.RFC3339)
	}
	return doc
}

func inventoryID(machine, component string) string { return machine + "-" + component }

// serveUpdate answers the UpdateService and the TaskService: rest is the path after
// /redfish/v1.
func (v *VBMC) serveUpdate(w http.ResponseWriter, r *http.Request, rest string) {
	const us = "/redfish/v1/UpdateService"
	get := r.Method == http.MethodGet
	switch {
	case rest == "/UpdateService" && get:
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": us, "@odata.type": "#UpdateService.v1_11_0.UpdateService", "Id": "UpdateService",
			"Name": "Update Service", "ServiceEnabled": true, "Status": enabled,
			"FirmwareInventory": map[string]any{"@odata.id": us + "/FirmwareInventory"},
			"Actions": map[string]any{"#UpdateService.SimpleUpdate": map[string]any{"target": us + "/Actions/UpdateService.SimpleUpdate",
				"TransferProtocol@Redfish.AllowableValues": []string{"HTTP", "HTTPS"}}}})
	case rest == "/UpdateService/FirmwareInventory" && get:
		var ids []string
		for _, name := range v.order {
			for _, c := range firmwareComponents {
				ids = append(ids, inventoryID(name, c))
			}
		}
		writeJSON(w, http.StatusOK, collection(us+"/FirmwareInventory", "SoftwareInventory", ids))
	case strings.HasPrefix(rest, "/UpdateService/FirmwareInventory/") && get:
		id := strings.TrimPrefix(rest, "/UpdateService/FirmwareInventory/")
		for _, name := range v.order {
			for _, c := range firmwareComponents {
				if id != inventoryID(name, c) {
					continue
				}
				related := "/redfish/v1/Systems/" + name
				if c == "BMC" {
					related = "/redfish/v1/Managers/" + name
				}
				writeJSON(w, http.StatusOK, map[string]any{"@odata.id": us + "/FirmwareInventory/" + id, "@odata.type": "#SoftwareInventory.v1_9_0.SoftwareInventory",
					"Id": id, "Name": c + " firmware of " + name, "Version": v.machines[name].Firmware()[c], "Updateable": true,
					"Manufacturer": "Ironwork", "Status": enabled, "RelatedItem": []map[string]any{{"@odata.id": related}}})
				return
			}
		}
		redfishError(w, http.StatusNotFound, "no resource at "+r.URL.Path)
	case rest == "/UpdateService/Actions/UpdateService.SimpleUpdate" && r.Method == http.MethodPost:
		v.simpleUpdate(w, r)
	case rest == "/TaskService" && get:
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": "/redfish/v1/TaskService", "@odata.type": "#TaskService.v1_2_0.TaskService",
			"Id": "TaskService", "Name": "Task Service", "ServiceEnabled": true, "Tasks": map[string]any{"@odata.id": "/redfish/v1/TaskService/Tasks"}})
	case rest == "/TaskService/Tasks" && get:
		v.tasks.mu.Lock()
		var ids []string
		for _, t := range v.tasks.tasks {
			ids = append(ids, t.ID)
		}
		v.tasks.mu.Unlock()
		writeJSON(w, http.StatusOK, collection("/redfish/v1/TaskService/Tasks", "Task", ids))
	case strings.HasPrefix(rest, "/TaskService/Tasks/") && get:
		t, ok := v.tasks.get(strings.TrimPrefix(rest, "/TaskService/Tasks/"))
		if !ok {
			redfishError(w, http.StatusNotFound, "no task at "+r.URL.Path)
			return
		}
		writeJSON(w, http.StatusOK, taskDoc(t))
	case strings.HasPrefix(rest, "/TaskService/TaskMonitors/") && get:
		// A task monitor answers 202 while the task runs and 200 once it ended.
		t, ok := v.tasks.get(strings.TrimPrefix(rest, "/TaskService/TaskMonitors/"))
		if !ok {
			redfishError(w, http.StatusNotFound, "no task monitor at "+r.URL.Path)
			return
		}
		status := http.StatusOK
		if t.State == "New" || t.State == "Running" {
			status = http.StatusAccepted
			w.Header().Set("Location", "/redfish/v1/TaskService/TaskMonitors/"+t.ID)
		}
		writeJSON(w, status, taskDoc(t))
	default:
		redfishError(w, http.StatusNotFound, "no resource at "+r.URL.Path)
	}
}

// simpleUpdate starts a firmware update. The machine is the one Targets names (its System, or
// one of its inventory items), or the only machine.
func (v *VBMC) simpleUpdate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ImageURI         string
		Targets          []string
		TransferProtocol string
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil || body.ImageURI == "" {
		redfishError(w, http.StatusBadRequest, "SimpleUpdate needs an ImageURI")
		return
	}
	uri := body.ImageURI
	if body.TransferProtocol != "" && !strings.Contains(uri, "://") {
		uri = strings.ToLower(body.TransferProtocol) + "://" + uri
	}
	if err := checkImageURL(uri); err != nil {
		redfishError(w, http.StatusBadRequest, err.Error())
		return
	}
	machine := ""
	switch {
	case len(body.Targets) > 0:
		for _, tgt := range body.Targets {
			for _, name := range v.order {
				if tgt == "/redfish/v1/Systems/"+name || tgt == "/redfish/v1/Managers/"+name ||
					slices.ContainsFunc(firmwareComponents, func(c string) bool { return tgt == "/redfish/v1/UpdateService/FirmwareInventory/"+inventoryID(name, c) }) {
					machine = name
				}
			}
		}
		if machine == "" {
			redfishError(w, http.StatusBadRequest, fmt.Sprintf("Targets %v name no system of this BMC", body.Targets))
			return
		}
	case len(v.order) == 1:
		machine = v.order[0]
	default:
		redfishError(w, http.StatusBadRequest, "this BMC serves several systems: name one in Targets")
		return
	}
	v.tasks.mu.Lock()
	for _, t := range v.tasks.tasks {
		if t.Machine == machine && (t.State == "New" || t.State == "Running") {
			v.tasks.mu.Unlock()
			redfishError(w, http.StatusConflict, "an update of "+machine+" is already running: task "+t.ID)
			return
		}
	}
	t := &fwTask{ID: strconv.Itoa(len(v.tasks.tasks) + 1), Machine: machine, Image: uri, State: "New", StartTime: time.Now()}
	v.tasks.tasks = append(v.tasks.tasks, t)
	doc := taskDoc(*t)
	v.tasks.wg.Add(1)
	v.tasks.mu.Unlock()
	go v.runUpdate(t.ID, machine, uri)
	w.Header().Set("Location", "/redfish/v1/TaskService/TaskMonitors/"+t.ID)
	writeJSON(w, http.StatusAccepted, doc)
}

// runUpdate downloads the image, checks it, "flashes" for UpdateSeconds and sets the version.
func (v *VBMC) runUpdate(id, machine, uri string) {
	defer v.tasks.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-v.tasks.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	fail := func(err error) {
		v.log.Warn("firmware update failed", "vm", machine, "image", uri, "error", err)
		v.tasks.update(id, func(t *fwTask) { t.State, t.Message, t.EndTime = "Exception", err.Error(), time.Now() })
	}
	v.tasks.update(id, func(t *fwTask) { t.State, t.Message = "Running", "Downloading "+uri })
	component, version, err := fetchFirmware(ctx, uri)
	if err != nil {
		fail(err)
		return
	}
	v.tasks.update(id, func(t *fwTask) { t.Percent, t.Message = 10, "Flashing "+component+" firmware "+version })
	d := time.Duration(v.cfg.UpdateSeconds * float64(time.Second))
	if v.cfg.UpdateSeconds == 0 {
		d = 3 * time.Second
	}
	steps := 10
	for i := 1; i <= steps; i++ {
		select {
		case <-ctx.Done():
			fail(errors.New("the update was interrupted"))
			return
		case <-time.After(d / time.Duration(steps)):
		}
		v.tasks.update(id, func(t *fwTask) { t.Percent = 10 + 90*i/steps })
	}
	v.machines[machine].setFirmware(component, version)
	v.log.Info("firmware updated", "vm", machine, "component", component, "version", version)
	v.tasks.update(id, func(t *fwTask) {
		t.State, t.Percent, t.Message, t.EndTime = "Completed", 100, component+" firmware "+version+" is active", time.Now()
	})
}

// checkImageURL refuses what the BMC will not fetch: anything but http(s) from an allowed
// address.
func checkImageURL(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("image %q: %w", uri, errMediaSource)
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && !mediaAllowed(ip) {
		return fmt.Errorf("image %q: %w", uri, errMediaSource)
	}
	return nil
}

// fetchFirmware downloads a firmware image and reads its header line.
func fetchFirmware(ctx context.Context, uri string) (component, version string, err error) {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); !ok || !mediaAllowed(ta.IP) {
			c.Close()
			return nil, fmt.Errorf("image %q at %s: %w", uri, c.RemoteAddr(), errMediaSource)
		}
		return c, nil
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return "", "", fmt.Errorf("download %s: %w", uri, err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", "", fmt.Errorf("download %s: %w", uri, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("download %s: HTTP %s", uri, resp.Status)
	}
	br := bufio.NewReader(io.LimitReader(resp.Body, firmwareImageMax))
	line, _ := br.ReadString('\n')
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ironwork-firmware" || !slices.Contains(firmwareComponents, f[1]) {
		return "", "", fmt.Errorf("%s is not a firmware image of this machine (its first line is not \"ironwork-firmware <BIOS|BMC|NIC> <version>\")", uri)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return "", "", fmt.Errorf("download %s: %w", uri, err)
	}
	return f[1], f[2], nil
}
