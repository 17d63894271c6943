package vbmc

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	ipmichassis "github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Indicator lights. A machine has two: the system's and the chassis' (Redfish IndicatorLED,
// Off, Lit or Blinking). The chassis light is also the IPMI chassis identify light: Chassis
// Identify with "force" lights it until it is turned off, with an interval it blinks for that
// many seconds, with interval 0 it goes off; Get Chassis Status reports its state, and a
// Redfish PATCH of the chassis' IndicatorLED is seen over IPMI and the other way round.

// Redfish IndicatorLED values.
const (
	LEDOff      = "Off"
	LEDLit      = "Lit"
	LEDBlinking = "Blinking"
)

// leds is a machine's indicator state.
type leds struct {
	mu     sync.Mutex
	system string
	// chassis is the chassis light; a Blinking one started by an IPMI interval goes off at
	// blinkUntil (zero: blinks until changed).
	chassis    string
	blinkUntil time.Time
	bmcResets  int
}

func validLED(s string) bool { return s == LEDOff || s == LEDLit || s == LEDBlinking }

// SystemLED returns the system's IndicatorLED.
func (m *Machine) SystemLED() string {
	m.leds.mu.Lock()
	defer m.leds.mu.Unlock()
	if m.leds.system == "" {
		return LEDOff
	}
	return m.leds.system
}

// SetSystemLED sets the system's IndicatorLED.
func (m *Machine) SetSystemLED(s string) error {
	if !validLED(s) {
		return fmt.Errorf("unsupported IndicatorLED %q", s)
	}
	m.leds.mu.Lock()
	defer m.leds.mu.Unlock()
	m.leds.system = s
	m.log.Info("system indicator set", "led", s)
	return nil
}

// ChassisLED returns the chassis' IndicatorLED (the identify light).
func (m *Machine) ChassisLED() string {
	m.leds.mu.Lock()
	defer m.leds.mu.Unlock()
	return m.chassisLEDLocked()
}

func (m *Machine) chassisLEDLocked() string {
	l := &m.leds
	if l.chassis == LEDBlinking && !l.blinkUntil.IsZero() && time.Now().After(l.blinkUntil) {
		l.chassis, l.blinkUntil = LEDOff, time.Time{}
	}
	if l.chassis == "" {
		return LEDOff
	}
	return l.chassis
}

// SetChassisLED sets the chassis' IndicatorLED.
func (m *Machine) SetChassisLED(s string) error {
	if !validLED(s) {
		return fmt.Errorf("unsupported IndicatorLED %q", s)
	}
	m.leds.mu.Lock()
	defer m.leds.mu.Unlock()
	m.leds.chassis, m.leds.blinkUntil = s, time.Time{}
	m.log.Info("chassis indicator set", "led", s)
	return nil
}

// identify applies an IPMI Chassis Identify: force lights the chassis light, otherwise it
// blinks for seconds (0: off).
func (m *Machine) identify(seconds uint8, force bool) {
	m.leds.mu.Lock()
	defer m.leds.mu.Unlock()
	switch {
	case force:
		m.leds.chassis, m.leds.blinkUntil = LEDLit, time.Time{}
	case seconds == 0:
		m.leds.chassis, m.leds.blinkUntil = LEDOff, time.Time{}
	default:
		m.leds.chassis, m.leds.blinkUntil = LEDBlinking, time.Now().Add(time.Duration(seconds)*time.Second)
	}
	m.log.Info("chassis identify", "led", m.leds.chassis)
}

// identifyState is the chassis light as Get Chassis Status reports it.
func (m *Machine) identifyState() ipmichassis.ChassisIdentifyState {
	m.leds.mu.Lock()
	defer m.leds.mu.Unlock()
	switch m.chassisLEDLocked() {
	case LEDLit:
		return ipmichassis.ChassisIdentifyStateIndefiniteOn
	case LEDBlinking:
		return ipmichassis.ChassisIdentifyStateTemporaryOn
	}
	return ipmichassis.ChassisIdentifyStateOff
}

// BMCResets counts the IPMI Cold and Warm Resets the machine's BMC received.
func (m *Machine) BMCResets() int {
	m.leds.mu.Lock()
	defer m.leds.mu.Unlock()
	return m.leds.bmcResets
}

// withIndicatorHandlers adds to reg Chassis Identify and Get Chassis Status with the
// machine's identify light, and BMC Cold and Warm Reset that reset the BMC only: the virtual
// BMC keeps its sessions and the machine keeps running (go-ipmi's standard handlers would
// reset the machine).
func withIndicatorHandlers(reg *handlers.Registry, m *Machine) *handlers.Registry {
	reg.RegisterFunc(types.CommandChassisIdentify, func(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		seconds := uint8(15) // the default interval (IPMI 2.0, 28.5)
		if len(req) >= 1 {
			seconds = req[0]
		}
		m.identify(seconds, len(req) >= 2 && req[1]&0x01 != 0)
		return nil, types.CodeOK, nil
	})
	reg.RegisterFunc(types.CommandGetChassisStatus, func(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
		resp := &ipmichassis.GetChassisStatusResponse{PowerIsOn: m.On(), ChassisIdentifySupported: true, ChassisIdentifyState: m.identifyState()}
		return resp.Pack(), types.CodeOK, nil
	})
	reset := func(kind string) handlers.HandlerFunc {
		return func(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
			m.leds.mu.Lock()
			m.leds.bmcResets++
			m.leds.mu.Unlock()
			m.log.Info("BMC reset", "kind", kind)
			return nil, types.CodeOK, nil
		}
	}
	reg.RegisterFunc(types.CommandColdReset, reset("cold"))
	reg.RegisterFunc(types.CommandWarmReset, reset("warm"))
	return reg
}

// resourceUUID is a stable UUID of one of a machine's resources (its system, its chassis).
func resourceUUID(kind, name string) string {
	h := sha1.Sum([]byte("ironwork-vbmc/" + kind + "/" + name))
	h[6] = h[6]&0x0f | 0x50 // version 5
	h[8] = h[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// patchChassis serves PATCH of a chassis: its IndicatorLED.
func (v *VBMC) patchChassis(w http.ResponseWriter, r *http.Request, m *Machine) {
	var body map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil {
		redfishError(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
		return
	}
	var led string
	for k, raw := range body {
		if k != "IndicatorLED" {
			redfishError(w, http.StatusBadRequest, "property "+k+" cannot be changed")
			return
		}
		if err := json.Unmarshal(raw, &led); err != nil || !validLED(led) {
			redfishError(w, http.StatusBadRequest, "IndicatorLED is one of Off, Lit, Blinking")
			return
		}
	}
	if led != "" {
		m.SetChassisLED(led)
	}
	w.WriteHeader(http.StatusNoContent)
}
