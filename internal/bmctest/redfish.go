// Package bmctest provides BMCs for tests: a Redfish service that serves a DMTF mockup
// directory (data we did not write) and applies the actions a provisioning service uses. It is
// a test helper, in the spirit of net/http/httptest; nothing in production imports it.
package bmctest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// MockupDir returns the directory of DMTF's public-rackmount1 mockup in ../shared next to the
// repository (or under $IRONWORK_REDFISH_MOCKUPS, for a checkout elsewhere, such as a git
// worktree), or skips the test with a clear message when it is absent (a user's clone).
func MockupDir(t testing.TB, fromPkg string) string {
	t.Helper()
	dir := filepath.Join(fromPkg, "shared", "redfish-mockups", "public-rackmount1")
	if env := os.Getenv("IRONWORK_REDFISH_MOCKUPS"); env != "" {
		dir = filepath.Join(env, "public-rackmount1")
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		t.Skipf("DMTF Redfish mockup not found at %s (it lives in ../shared next to the repository, which only CI and the developers have)", dir)
	}
	return dir
}

// Redfish serves a mockup over HTTP with basic authentication. Reset actions change the
// systems' PowerState and PATCHes change their Boot settings, in memory.
type Redfish struct {
	*httptest.Server
	User, Password string

	mu        sync.Mutex
	resources map[string]map[string]any
	// Resets records the ResetType of every reset, in order.
	Resets []string
	// PowerLag is how many GETs of a system after a reset still show the old power state,
	// as slow BMCs do.
	PowerLag int
	pending  map[string]pendingPower
	// FailResets makes every reset answer 500.
	FailResets bool
	// TaskPolls makes resets asynchronous, as Redfish tasks: the reset answers 202 with a
	// task monitor, which answers 202 this many times before the task completes (and the
	// power state changes). TaskFails makes the task end in Exception instead.
	TaskPolls int
	TaskFails bool
	tasks     map[string]*task
}

type task struct {
	sys, state string
	left       int
}

type pendingPower struct {
	state string
	left  int
}

// NewRedfish loads the mockup in dir and serves it until the test ends.
func NewRedfish(t testing.TB, dir string) *Redfish {
	t.Helper()
	r := &Redfish{User: "admin", Password: "password", resources: map[string]map[string]any{}, pending: map[string]pendingPower{},
		tasks: map[string]*task{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "index.json" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var doc map[string]any
		if json.Unmarshal(b, &doc) != nil {
			return nil // the mockup has a few non-object documents; they are not needed
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(path))
		key := "/redfish/v1"
		if rel != "." {
			key += "/" + filepath.ToSlash(rel)
		}
		r.resources[key] = doc
		return nil
	})
	if err != nil {
		t.Fatalf("load mockup %s: %v", dir, err)
	}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

// Resource returns a copy of the resource at path, as the service now shows it.
func (r *Redfish) Resource(path string) map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, _ := json.Marshal(r.resources[path])
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

// SetResource replaces the resource at path (tests use it to serve odd documents).
func (r *Redfish) SetResource(path string, doc map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resources[path] = doc
}

func (r *Redfish) authorized(req *http.Request) bool {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(r.User+":"+r.Password))
	return req.Header.Get("Authorization") == want
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (r *Redfish) serve(w http.ResponseWriter, req *http.Request) {
	path := strings.TrimSuffix(req.URL.Path, "/")
	if path != "/redfish/v1" && path != "/redfish" && !r.authorized(req) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"message": "authentication required"}})
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch req.Method {
	case http.MethodGet:
		if tk, ok := r.tasks[path]; ok {
			if tk.left > 0 {
				tk.left--
				w.Header().Set("Location", path)
				writeJSON(w, http.StatusAccepted, map[string]any{"@odata.id": path, "TaskState": "Running"})
				return
			}
			delete(r.tasks, path)
			if r.TaskFails {
				writeJSON(w, http.StatusOK, map[string]any{"@odata.id": path, "TaskState": "Exception",
					"Messages": []map[string]any{{"Message": "the reset failed in the BMC"}}})
				return
			}
			r.resources[tk.sys]["PowerState"] = tk.state
			writeJSON(w, http.StatusOK, map[string]any{"@odata.id": path, "TaskState": "Completed"})
			return
		}
		doc, ok := r.resources[path]
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"message": "not found: " + path}})
			return
		}
		if p, ok := r.pending[path]; ok {
			if p.left > 0 {
				r.pending[path] = pendingPower{p.state, p.left - 1}
			} else {
				doc["PowerState"] = p.state
				delete(r.pending, path)
			}
		}
		writeJSON(w, http.StatusOK, doc)
	case http.MethodPost:
		sys, action, ok := strings.Cut(path, "/Actions/")
		doc := r.resources[sys]
		if !ok || doc == nil || action != "ComputerSystem.Reset" {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"message": "no such action"}})
			return
		}
		var body struct{ ResetType string }
		if err := json.NewDecoder(io.LimitReader(req.Body, 1<<16)).Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"message": err.Error()}})
			return
		}
		if r.FailResets {
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]any{"message": "reset failed"}})
			return
		}
		r.Resets = append(r.Resets, body.ResetType)
		state, _ := doc["PowerState"].(string)
		switch body.ResetType {
		case "On", "ForceOn", "ForceRestart", "GracefulRestart", "PowerCycle":
			state = "On"
		case "ForceOff", "GracefulShutdown":
			state = "Off"
		case "PushPowerButton":
			if state == "On" {
				state = "Off"
			} else {
				state = "On"
			}
		case "Nmi":
		default:
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"message": "unsupported ResetType " + body.ResetType}})
			return
		}
		if r.TaskPolls > 0 || r.TaskFails {
			mon := fmt.Sprintf("/redfish/v1/TaskService/TaskMonitors/%d", len(r.Resets))
			r.tasks[mon] = &task{sys: sys, state: state, left: r.TaskPolls}
			w.Header().Set("Location", mon)
			writeJSON(w, http.StatusAccepted, map[string]any{"@odata.id": mon, "TaskState": "New"})
			return
		}
		if r.PowerLag > 0 {
			r.pending[sys] = pendingPower{state, r.PowerLag}
		} else {
			doc["PowerState"] = state
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPatch:
		doc := r.resources[path]
		if doc == nil {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"message": "not found"}})
			return
		}
		var body map[string]any
		if err := json.NewDecoder(io.LimitReader(req.Body, 1<<16)).Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"message": err.Error()}})
			return
		}
		for k, v := range body {
			if sub, ok := v.(map[string]any); ok {
				cur, _ := doc[k].(map[string]any)
				if cur == nil {
					cur = map[string]any{}
				}
				for sk, sv := range sub {
					cur[sk] = sv
				}
				doc[k] = cur
			} else {
				doc[k] = v
			}
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": map[string]any{"message": "method not allowed"}})
	}
}
