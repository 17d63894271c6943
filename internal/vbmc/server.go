package vbmc

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/clock"
	"github.com/bougou/go-ipmi/pkg/hal/mock"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/transport"
	"github.com/bougou/go-ipmi/pkg/transport/udp"
	"github.com/bougou/go-ipmi/pkg/types"
)

// MachineConfig describes one machine and where its IPMI BMC listens.
type MachineConfig struct {
	Name       string   `toml:"name"`
	IPMIListen string   `toml:"ipmi_listen"` // host:port (UDP); empty: no IPMI for this machine
	Command    []string `toml:"command"`     // QEMU command line, without -boot
	// SerialSocket is the unix socket of the machine's serial line (QEMU's
	// "-serial unix:PATH,server=on,wait=off"); IPMI Serial-over-LAN attaches to it.
	SerialSocket string `toml:"serial_socket"`
	// VirtualMedia are the virtual drives the BMC offers: "Cd" (a CD/DVD drive, the
	// default) and "Usb" (a USB stick).
	VirtualMedia []string `toml:"virtual_media"`
}

// Config is the virtual BMC's configuration.
type Config struct {
	Username      string `toml:"username"`
	Password      string `toml:"password"`
	RedfishListen string `toml:"redfish_listen"` // host:port (TCP); empty: no Redfish
	// MediaDir is where images inserted as virtual media are downloaded (default: a new
	// directory under the system's temporary directory).
	MediaDir string `toml:"media_dir"`
	// UpdateSeconds is how long a firmware update task runs (default 3).
	UpdateSeconds float64 `toml:"update_seconds"`
	// MediaNetns is the network namespace images are downloaded from (default: this
	// process's): a BMC's own network, which reaches a lab's provisioning network when the
	// BMC's Redfish service is on the host's loopback.
	MediaNetns string          `toml:"media_netns"`
	Machines   []MachineConfig `toml:"machine"`
	// IPMIMux, when set, serves the machines' IPMI on its one socket: each machine's
	// IPMIListen is then an IPv4 address of its own, without a port (fleet simulations).
	IPMIMux *IPMIMux `toml:"-"`
	// RedfishLatency delays every Redfish answer, as a real BMC's slower service would
	// (fleet simulations; IPMI answers take the IPMIMux's latency).
	RedfishLatency time.Duration `toml:"-"`
	// SystemRead, when set, is called with the machine's name at every GET of a
	// ComputerSystem (benchmarks record when each BMC was last read).
	SystemRead func(name string) `toml:"-"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Username == "" || c.Password == "" {
		errs = append(errs, errors.New("username and password are required"))
	}
	if len(c.Machines) == 0 {
		errs = append(errs, errors.New("no [[machine]] is configured"))
	}
	seen := map[string]bool{}
	for i, m := range c.Machines {
		switch {
		case m.Name == "" || strings.ContainsAny(m.Name, "/ "):
			errs = append(errs, fmt.Errorf("machine %d: a name without '/' or spaces is required", i))
		case seen[m.Name]:
			errs = append(errs, fmt.Errorf("machine %s: the name is used twice", m.Name))
		case len(m.Command) == 0:
			errs = append(errs, fmt.Errorf("machine %s: command is required", m.Name))
		}
		seen[m.Name] = true
	}
	return errors.Join(errs...)
}

// VBMC serves the BMCs of a set of machines.
type VBMC struct {
	cfg      Config
	log      *slog.Logger
	machines map[string]*Machine
	order    []string
	ipmi     []*server.Server
	redfish  *http.Server
	redLn    net.Listener
	mediaDir string
	events   eventService // the Redfish EventService's subscriptions (events.go)
	madeDir  bool         // mediaDir was made by Start, and Close removes it
	tasks    *taskService
	storage  storageVolumes
	// IPMIAddrs and RedfishURL say where the services listen once started.
	IPMIAddrs  map[string]string
	RedfishURL string
}

// Start opens every listener. Serve runs them; Close powers the machines off.
func Start(cfg Config, log *slog.Logger) (*VBMC, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid vbmc configuration: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &VBMC{cfg: cfg, log: log, machines: map[string]*Machine{}, IPMIAddrs: map[string]string{}, mediaDir: cfg.MediaDir,
		tasks: newTaskService()}
	if v.mediaDir == "" {
		dir, err := os.MkdirTemp("", "ironwork-vbmc-media-")
		if err != nil {
			return nil, fmt.Errorf("make the virtual media directory: %w", err)
		}
		v.mediaDir, v.madeDir = dir, true
	}
	for _, mc := range cfg.Machines {
		m := NewMachine(mc.Name, mc.Command, log)
		m.fetch = func(ctx context.Context, uri string) (string, error) {
			return downloadMedia(ctx, uri, v.mediaDir, cfg.MediaNetns, 10*time.Minute)
		}
		if mc.VirtualMedia != nil {
			if err := m.SetDrives(mc.VirtualMedia); err != nil {
				v.Close()
				return nil, fmt.Errorf("machine %s: %w", mc.Name, err)
			}
		}
		v.machines[mc.Name] = m
		v.order = append(v.order, mc.Name)
		if mc.IPMIListen == "" {
			continue
		}
		conn, err := v.ipmiConn(mc.IPMIListen)
		if err != nil {
			v.Close()
			return nil, fmt.Errorf("machine %s: listen for IPMI on %s: %w", mc.Name, mc.IPMIListen, err)
		}
		var guid [16]byte
		copy(guid[:], "ironwork-"+mc.Name)
		h := mock.New()
		if mc.SerialSocket != "" {
			h.SetConsole(socketConsole{path: mc.SerialSocket})
		}
		b := bmc.New(bmc.DeviceInfo{DeviceID: 0x20, DeviceRevision: 1, FirmwareMajor: 1, IPMIVersion: 0x20,
			ManufacturerID: 0x000157, ProductID: 0x0001}, guid, ipmiHAL{HAL: h, m: m}, bmc.WithClock(clock.Real))
		user, err := b.Users.Add(2, cfg.Username)
		if err != nil {
			v.Close()
			return nil, fmt.Errorf("machine %s: add IPMI user: %w", mc.Name, err)
		}
		user.SetPassword([]byte(cfg.Password))
		user.Enabled = true
		user.ChannelAccess[1] = bmc.UserChannelAccess{MaxPrivilege: bmc.PrivilegeLevelAdministrator, Enabled: true}
		sensors := ipmiSensors()
		if err := writeSDR(context.Background(), h.Storage().SDR(), sensors); err != nil {
			v.Close()
			return nil, fmt.Errorf("machine %s: %w", mc.Name, err)
		}
		v.ipmi = append(v.ipmi, server.NewServer(b, conn, server.WithCipherSuites([]types.CipherSuiteID{types.CipherSuiteID3, types.CipherSuiteID17}),
			server.WithHandlerRegistry(withIndicatorHandlers(ipmiSensorRegistry(m, sensors), m))))
		v.IPMIAddrs[mc.Name] = conn.LocalAddr().String()
	}
	if cfg.RedfishListen != "" {
		ln, err := net.Listen("tcp", cfg.RedfishListen)
		if err != nil {
			v.Close()
			return nil, fmt.Errorf("listen for Redfish on %s: %w", cfg.RedfishListen, err)
		}
		v.redLn = ln
		v.RedfishURL = "http://" + ln.Addr().String()
		var h http.Handler = v
		if cfg.RedfishLatency > 0 || cfg.SystemRead != nil {
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if cfg.RedfishLatency > 0 {
					select {
					case <-time.After(cfg.RedfishLatency):
					case <-r.Context().Done():
						return
					}
				}
				if name, ok := strings.CutPrefix(r.URL.Path, "/redfish/v1/Systems/"); ok && cfg.SystemRead != nil && r.Method == http.MethodGet {
					cfg.SystemRead(name)
				}
				v.ServeHTTP(w, r)
			})
		}
		v.redfish = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	}
	return v, nil
}

// ipmiConn is a machine's IPMI transport: a socket of its own at addr (host:port), or its
// address addr on the configured IPMIMux.
func (v *VBMC) ipmiConn(addr string) (ipmiTransport, error) {
	if v.cfg.IPMIMux == nil {
		return udp.Listen(addr)
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("an address without a port for the IPMI mux: %w", err)
	}
	return v.cfg.IPMIMux.bmcConn(ip)
}

// ipmiTransport is what go-ipmi's server reads and writes, and where it listens.
type ipmiTransport interface {
	transport.PacketConn
	LocalAddr() net.Addr
}

// Machine returns a machine by name.
func (v *VBMC) Machine(name string) *Machine { return v.machines[name] }

// Serve answers IPMI and Redfish until ctx ends.
func (v *VBMC) Serve(ctx context.Context) error {
	errc := make(chan error, len(v.ipmi)+1)
	for _, s := range v.ipmi {
		go func() { errc <- s.Serve(ctx) }()
	}
	if v.redfish != nil {
		go func() { errc <- v.redfish.Serve(v.redLn) }()
	}
	v.log.Info("vbmc serving", "machines", len(v.machines), "ipmi", v.IPMIAddrs, "redfish", v.RedfishURL)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
}

// Close stops the services and powers every machine off.
func (v *VBMC) Close() error {
	for _, s := range v.ipmi {
		s.Close()
	}
	if v.redfish != nil {
		v.redfish.Close()
	} else if v.redLn != nil {
		v.redLn.Close()
	}
	v.tasks.close()
	for _, m := range v.machines {
		m.PowerOff()
		m.SetMedia("", "")
	}
	if v.madeDir {
		os.RemoveAll(v.mediaDir)
	}
	return nil
}

// Redfish: the service root, the systems collection and one ComputerSystem per machine, with
// ComputerSystem.Reset and PATCH of Boot; one Chassis per machine with its sensors (sensors.go).

func (v *VBMC) authorized(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	return ok && subtle.ConstantTimeCompare([]byte(u), []byte(v.cfg.Username)) == 1 &&
		subtle.ConstantTimeCompare([]byte(p), []byte(v.cfg.Password)) == 1
}

func redfishError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": "Base.1.0.GeneralError", "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

var bootToRedfish = map[string]string{BootPXE: "Pxe", BootDisk: "Hdd", BootCD: "Cd", BootUSB: "Usb", BootHTTP: "UefiHttp"}

// redfishToBoot maps the override targets the service accepts onto boot devices; UsbCd (a
// virtual CD on USB) boots the same drive as Cd.
var redfishToBoot = map[string]string{"Pxe": BootPXE, "Hdd": BootDisk, "Cd": BootCD, "UsbCd": BootCD, "Usb": BootUSB, "UefiHttp": BootHTTP}

func (v *VBMC) system(m *Machine) map[string]any {
	path := "/redfish/v1/Systems/" + m.Name
	power := "Off"
	if m.On() {
		power = "On"
	}
	dev, persistent := m.Boot()
	enabled := "Once"
	if persistent {
		enabled = "Continuous"
	}
	hw := HardwareFromCommand(m.Command)
	mode := "Legacy"
	if hw.UEFI {
		mode = "UEFI"
	}
	targets := []string{"Pxe", "Hdd", "Cd", "UsbCd", "Usb"}
	if hw.UEFI {
		targets = append(targets, "UefiHttp") // UEFI HTTP boot exists only in UEFI firmware
	}
	var httpURI any
	if u := m.HTTPBootURI(); u != "" {
		httpURI = u
	}
	doc := map[string]any{
		"@odata.id": path, "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem", "Id": m.Name, "Name": m.Name,
		"SystemType": "Virtual", "PowerState": power, "UUID": resourceUUID("system", m.Name), "IndicatorLED": m.SystemLED(),
		"Boot": map[string]any{"BootSourceOverrideTarget": bootToRedfish[dev], "BootSourceOverrideEnabled": enabled,
			"BootSourceOverrideMode": cmp.Or(m.BootMode(), mode), "BootSourceOverrideMode@Redfish.AllowableValues": []string{ModeLegacy, ModeUEFI},
			"BootSourceOverrideTarget@Redfish.AllowableValues": targets, "HttpBootUri": httpURI},
		"Bios": map[string]any{"@odata.id": path + "/Bios"}, "BiosVersion": m.Firmware()["BIOS"],
		"Manufacturer": "Ironwork", "Model": "vbmc virtual machine", "SerialNumber": "VBMC-" + m.Name,
		"Links": map[string]any{"ManagedBy": []map[string]any{{"@odata.id": "/redfish/v1/Managers/" + m.Name}},
			"Chassis": chassisLinks(m.Name)},
		"Actions": map[string]any{"#ComputerSystem.Reset": map[string]any{
			"target":                            path + "/Actions/ComputerSystem.Reset",
			"ResetType@Redfish.AllowableValues": []string{"On", "ForceOff", "GracefulShutdown", "ForceRestart", "GracefulRestart", "Nmi"},
		}},
	}
	for k, v := range hardwareLinks(path, hw) {
		doc[k] = v
	}
	return doc
}

// ServeHTTP implements the Redfish service.
func (v *VBMC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == "/redfish" {
		writeJSON(w, http.StatusOK, map[string]any{"v1": "/redfish/v1/"})
		return
	}
	if path == "/redfish/v1" {
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": "/redfish/v1", "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
			"Id": "RootService", "Name": "Ironwork virtual BMC", "RedfishVersion": "1.6.0",
			"Systems":       map[string]any{"@odata.id": "/redfish/v1/Systems"},
			"Chassis":       map[string]any{"@odata.id": "/redfish/v1/Chassis"},
			"EventService":  map[string]any{"@odata.id": "/redfish/v1/EventService"},
			"Registries":    map[string]any{"@odata.id": "/redfish/v1/Registries"},
			"UpdateService": map[string]any{"@odata.id": "/redfish/v1/UpdateService"},
			"TaskService":   map[string]any{"@odata.id": "/redfish/v1/TaskService"}})
		return
	}
	if !v.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="ironwork vbmc"`)
		redfishError(w, http.StatusUnauthorized, "authentication required")
		return
	}
	if path == "/redfish/v1/Systems" {
		var members []map[string]any
		for _, name := range v.order {
			members = append(members, map[string]any{"@odata.id": "/redfish/v1/Systems/" + name})
		}
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": path, "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
			"Name": "Computer System Collection", "Members@odata.count": len(members), "Members": members})
		return
	}
	if rest, ok := strings.CutPrefix(path, "/redfish/v1/Chassis"); ok && (rest == "" || rest[0] == '/') {
		v.serveChassis(w, r, rest)
		return
	}
	if rest, ok := strings.CutPrefix(path, "/redfish/v1/EventService"); ok && (rest == "" || rest[0] == '/') {
		v.serveEvents(w, r, rest)
		return
	}
	if rest, ok := strings.CutPrefix(path, "/redfish/v1"); ok && (strings.HasPrefix(rest, "/UpdateService") || strings.HasPrefix(rest, "/TaskService")) {
		v.serveUpdate(w, r, rest)
		return
	}
	if rest, ok := strings.CutPrefix(path, "/redfish/v1/Registries"); ok && (rest == "" || rest[0] == '/') {
		v.serveRegistries(w, r, rest)
		return
	}
	if rest, ok := strings.CutPrefix(path, "/redfish/v1/Managers/"); ok {
		v.serveManager(w, r, rest)
		return
	}
	rest, ok := strings.CutPrefix(path, "/redfish/v1/Systems/")
	if !ok {
		redfishError(w, http.StatusNotFound, "no resource at "+path)
		return
	}
	if name, sub, ok := strings.Cut(rest, "/"); ok && (sub == "Bios" || strings.HasPrefix(sub, "Bios/")) && v.machines[name] != nil {
		v.serveBIOS(w, r, v.machines[name], sub)
		return
	}
	if name, sub, ok := strings.Cut(rest, "/"); ok && !strings.HasPrefix(sub, "Actions/") && v.machines[name] != nil {
		if sub == "Storage" || strings.HasPrefix(sub, "Storage/") {
			v.serveStorage(w, r, v.machines[name], sub)
			return
		}
		v.serveHardware(w, r, v.machines[name], sub)
		return
	}
	name, action, isAction := strings.Cut(rest, "/Actions/")
	m := v.machines[name]
	if m == nil {
		redfishError(w, http.StatusNotFound, "no system "+name)
		return
	}
	switch {
	case r.Method == http.MethodGet && !isAction:
		writeJSON(w, http.StatusOK, v.system(m))
	case r.Method == http.MethodPost && action == "ComputerSystem.Reset":
		var body struct{ ResetType string }
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil {
			redfishError(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
			return
		}
		var err error
		switch body.ResetType {
		case "On", "ForceOn":
			err = m.PowerOn()
		case "ForceOff", "GracefulShutdown":
			err = m.PowerOff()
		case "ForceRestart", "GracefulRestart", "PowerCycle":
			err = m.Reset()
		case "Nmi":
		default:
			redfishError(w, http.StatusBadRequest, "unsupported ResetType "+body.ResetType)
			return
		}
		if err != nil {
			redfishError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPatch && !isAction:
		var body struct {
			Boot *struct {
				BootSourceOverrideTarget  string
				BootSourceOverrideEnabled string
				BootSourceOverrideMode    string
				HttpBootUri               json.RawMessage // absent, null (clears) or a URL
			}
			IndicatorLED string
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil {
			redfishError(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
			return
		}
		if body.IndicatorLED != "" && !validLED(body.IndicatorLED) {
			redfishError(w, http.StatusBadRequest, "IndicatorLED is one of Off, Lit, Blinking")
			return
		}
		if body.Boot == nil {
			if body.IndicatorLED != "" {
				m.SetSystemLED(body.IndicatorLED)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		// Check everything before changing anything: a refused PATCH changes nothing.
		dev := ""
		if tgt := body.Boot.BootSourceOverrideTarget; tgt != "" {
			if dev = redfishToBoot[tgt]; dev == "" {
				redfishError(w, http.StatusBadRequest, "unsupported BootSourceOverrideTarget "+tgt)
				return
			}
		}
		if mode := body.Boot.BootSourceOverrideMode; mode != "" && mode != ModeLegacy && mode != ModeUEFI {
			redfishError(w, http.StatusBadRequest, "unsupported BootSourceOverrideMode "+mode)
			return
		}
		setURI, uri := len(body.Boot.HttpBootUri) > 0, ""
		if setURI && string(body.Boot.HttpBootUri) != "null" {
			if err := json.Unmarshal(body.Boot.HttpBootUri, &uri); err != nil {
				redfishError(w, http.StatusBadRequest, "HttpBootUri must be a string or null")
				return
			}
			if err := checkHTTPBootURI(uri); err != nil {
				redfishError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
		if dev == BootHTTP {
			if !HardwareFromCommand(m.Command).UEFI || cmp.Or(body.Boot.BootSourceOverrideMode, m.BootMode()) != ModeUEFI {
				redfishError(w, http.StatusBadRequest, "UefiHttp needs UEFI firmware and the UEFI boot mode")
				return
			}
			if !setURI && m.HTTPBootURI() == "" || setURI && uri == "" {
				redfishError(w, http.StatusBadRequest, "UefiHttp needs an HttpBootUri")
				return
			}
		}
		if setURI {
			if err := m.SetHTTPBootURI(uri); err != nil {
				redfishError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
		if mode := body.Boot.BootSourceOverrideMode; mode != "" {
			if err := m.SetBootMode(mode); err != nil {
				redfishError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
		if dev != "" {
			if err := m.SetBoot(dev, body.Boot.BootSourceOverrideEnabled == "Continuous"); err != nil {
				redfishError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
		if body.IndicatorLED != "" {
			m.SetSystemLED(body.IndicatorLED)
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		redfishError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+path)
	}
}

// serveManager serves a machine's Manager and its virtual CD drive: InsertMedia and
// EjectMedia change the image QEMU gets at its next start.
func (v *VBMC) serveManager(w http.ResponseWriter, r *http.Request, rest string) {
	name, sub, _ := strings.Cut(rest, "/")
	m := v.machines[name]
	if m == nil {
		redfishError(w, http.StatusNotFound, "no manager "+name)
		return
	}
	base := "/redfish/v1/Managers/" + name
	// VirtualMedia/{drive}[/Actions/VirtualMedia.{action}] for a drive the BMC offers.
	drive, action := "", ""
	if d, ok := strings.CutPrefix(sub, "VirtualMedia/"); ok {
		d, act, _ := strings.Cut(d, "/")
		if m.HasDrive(d) {
			drive = d
			action, _ = strings.CutPrefix(act, "Actions/VirtualMedia.")
			if act != "" && action == act {
				drive = "" // something under the drive that is not an action
			}
		}
	}
	dpath := base + "/VirtualMedia/" + drive
	switch {
	case sub == "" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": base, "@odata.type": "#Manager.v1_10_0.Manager", "Id": name,
			"Name": "BMC of " + name, "ManagerType": "BMC", "FirmwareVersion": m.Firmware()["BMC"],
			"Manufacturer": "Ironwork", "Model": "vbmc", "SerialNumber": "VBMC-BMC-" + name, "VirtualMedia": map[string]any{"@odata.id": base + "/VirtualMedia"}})
	case sub == "VirtualMedia" && r.Method == http.MethodGet:
		members := []map[string]any{}
		for _, d := range m.Drives() {
			members = append(members, map[string]any{"@odata.id": base + "/VirtualMedia/" + d})
		}
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": base + "/VirtualMedia", "Name": "Virtual Media",
			"Members@odata.count": len(members), "Members": members})
	case drive != "" && action == "" && r.Method == http.MethodGet:
		image := m.MediaIn(drive)
		var img any
		if image != "" {
			img = image
		}
		label, types := "Virtual CD", []string{"CD", "DVD"}
		if drive == DriveUSB {
			label, types = "Virtual USB stick", []string{"USBStick"}
		}
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": dpath, "@odata.type": "#VirtualMedia.v1_3_0.VirtualMedia", "Id": drive,
			"Name": label, "MediaTypes": types, "Image": img, "Inserted": image != "", "WriteProtected": true,
			"Actions": map[string]any{
				"#VirtualMedia.InsertMedia": map[string]any{"target": dpath + "/Actions/VirtualMedia.InsertMedia"},
				"#VirtualMedia.EjectMedia":  map[string]any{"target": dpath + "/Actions/VirtualMedia.EjectMedia"},
			}})
	case drive != "" && action == "InsertMedia" && r.Method == http.MethodPost:
		var body struct {
			Image          string
			Inserted       *bool
			TransferMethod string
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil || body.Image == "" {
			redfishError(w, http.StatusBadRequest, "InsertMedia needs an Image")
			return
		}
		if body.Inserted != nil && !*body.Inserted {
			redfishError(w, http.StatusBadRequest, "Inserted=false is not supported: use EjectMedia")
			return
		}
		if body.TransferMethod != "" && body.TransferMethod != "Stream" && body.TransferMethod != "Upload" {
			redfishError(w, http.StatusBadRequest, "unsupported TransferMethod "+body.TransferMethod)
			return
		}
		if m.MediaIn(drive) != "" {
			redfishError(w, http.StatusConflict, "the drive holds an image: eject it first")
			return
		}
		file, err := downloadMedia(r.Context(), body.Image, v.mediaDir, v.cfg.MediaNetns, 10*time.Minute)
		if err != nil {
			v.log.Warn("virtual media refused", "vm", name, "image", body.Image, "error", err)
			status := http.StatusBadGateway
			if errors.Is(err, errMediaSource) || errors.Is(err, errBadMedia) {
				status = http.StatusBadRequest
			}
			redfishError(w, status, err.Error())
			return
		}
		m.SetMediaIn(drive, body.Image, file)
		w.WriteHeader(http.StatusNoContent)
	case drive != "" && action == "EjectMedia" && r.Method == http.MethodPost:
		m.SetMediaIn(drive, "", "")
		w.WriteHeader(http.StatusNoContent)
	default:
		redfishError(w, http.StatusNotFound, "no resource at "+r.URL.Path)
	}
}
