// Package metrics exports Ironwork's Prometheus metrics: it implements the small Metrics
// interfaces that the API (httpapi), the conductor and the server's boot-service hooks declare,
// reads fleet-wide numbers (nodes by state, live conductors) from the store at scrape time, and
// serves them in the text exposition format. Everything is registered on the registry it is
// given: no global registry, no package state. It measures; it decides nothing.
package metrics

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/httpapi"
)

// namespace prefixes every metric's name.
const namespace = "ironwork"

// Metrics holds the instruments of one Ironwork process.
type Metrics struct {
	reg *prometheus.Registry

	apiRequests *prometheus.CounterVec
	apiDuration *prometheus.HistogramVec

	transitions *prometheus.CounterVec
	steps       *prometheus.HistogramVec
	phases      *prometheus.HistogramVec
	bmcErrors   *prometheus.CounterVec

	sensorsMu sync.Mutex // SensorsRead replaces the whole set at once
	sensors   *prometheus.GaugeVec

	dhcp      *prometheus.CounterVec
	tftp      *prometheus.CounterVec
	tftpBytes prometheus.Counter
	httpBoot  *prometheus.CounterVec

	imageLookups *prometheus.CounterVec
	imageBytes   prometheus.Counter

	externalEvents *prometheus.CounterVec
}

var (
	_ httpapi.Metrics      = (*Metrics)(nil)
	_ httpapi.EventCounter = (*Metrics)(nil)
	_ conductor.Metrics    = (*Metrics)(nil)
)

// Buckets of the histograms, in seconds: API answers take milliseconds, steps seconds to an
// hour (an image write), whole deploys and cleans minutes to hours.
var (
	apiBuckets   = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	stepBuckets  = []float64{0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}
	phaseBuckets = []float64{1, 5, 10, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 7200, 14400}
)

// New creates the instruments and registers them, with the Go runtime's and the process's
// collectors, on reg.
func New(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		reg: reg,
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "api_requests_total",
			Help: "API requests answered, by method, route template and HTTP status code."}, []string{"method", "route", "code"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "api_request_duration_seconds",
			Help: "Time to answer an API request, by method and route template.", Buckets: apiBuckets}, []string{"method", "route"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "provision_transitions_total",
			Help: "Provision state changes made by this conductor, by old state, new state and event."}, []string{"from", "to", "event"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "step_duration_seconds",
			Help:    "Duration of clean, deploy and service steps from start to end (waits for the agent included), by kind, interface, step and result.",
			Buckets: stepBuckets}, []string{"kind", "interface", "step", "result"}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "provision_duration_seconds",
			Help:    "Duration of whole deploys, cleans and inspections, from entering the operation to its end, by operation and result.",
			Buckets: phaseBuckets}, []string{"operation", "result"}),
		bmcErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "bmc_errors_total",
			Help: "Failed calls to BMCs, by the node's driver (hardware type) and call."}, []string{"driver", "call"}),
		sensors: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "sensor_reading",
			Help: "Hardware sensor readings of the last collection (send_sensor_data), by node UUID, sensor name, type and unit."},
			[]string{"node", "sensor", "type", "unit"}),
		dhcp: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "dhcp_requests_total",
			Help: "DHCPv4 requests received by the boot service, by message type and whether they were answered."}, []string{"type", "answered"}),
		tftp: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "tftp_requests_total",
			Help: "TFTP read requests, by result (ok or error)."}, []string{"result"}),
		tftpBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "tftp_sent_bytes_total",
			Help: "Payload bytes sent by TFTP transfers."}),
		httpBoot: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_boot_requests_total",
			Help: "HTTP boot requests (iPXE scripts, kernels, ramdisks), by HTTP status code."}, []string{"code"}),
		imageLookups: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "image_cache_requests_total",
			Help: "Image cache look-ups, by result: hit (a valid master was used) or miss (downloaded)."}, []string{"result"}),
		imageBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "image_cache_downloaded_bytes_total",
			Help: "Bytes the image cache downloaded."}),
		externalEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "external_events_total",
			Help: "External events accepted by POST /v1/events (API 1.54), by event type and status."}, []string{"event", "status"}),
	}
	reg.MustRegister(m.apiRequests, m.apiDuration, m.transitions, m.steps, m.phases, m.bmcErrors, m.sensors,
		m.dhcp, m.tftp, m.tftpBytes, m.httpBoot, m.imageLookups, m.imageBytes, m.externalEvents,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry's metrics in Prometheus's exposition formats. A collector that
// fails (the database is down) is logged and left out; the rest is served.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Admission is an API server's request queue (httpapi.Server.Admission): requests holding
// one of its turns and requests waiting for one.
type Admission interface {
	Admission() (running, waiting int)
}

// WatchAPI registers gauges read from a's queue at scrape time: a queue that stays long means
// the API server (or its database) is short of capacity for its load.
func (m *Metrics) WatchAPI(a Admission) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "api_requests_running",
			Help: "API requests being handled, each holding one of the api_max_concurrency turns (the event stream, console and metrics take none)."},
			func() float64 { r, _ := a.Admission(); return float64(r) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "api_requests_waiting",
			Help: "API requests waiting for a turn, in order of arrival."},
			func() float64 { _, w := a.Admission(); return float64(w) }))
}

// APIRequest implements httpapi.Metrics.
func (m *Metrics) APIRequest(method, route string, status int, d time.Duration) {
	m.apiRequests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.apiDuration.WithLabelValues(method, route).Observe(d.Seconds())
}

// ExternalEvent implements httpapi.EventCounter.
func (m *Metrics) ExternalEvent(event, status string) {
	m.externalEvents.WithLabelValues(event, status).Inc()
}

// Transition implements conductor.Metrics.
func (m *Metrics) Transition(from, to ironwork.ProvisionState, ev ironwork.Event) {
	m.transitions.WithLabelValues(string(from), string(to), string(ev)).Inc()
}

// StepDone implements conductor.Metrics.
func (m *Metrics) StepDone(kind conductor.StepKind, iface ironwork.InterfaceKind, step, result string, d time.Duration) {
	m.steps.WithLabelValues(string(kind), string(iface), step, result).Observe(d.Seconds())
}

// PhaseDone implements conductor.Metrics.
func (m *Metrics) PhaseDone(phase, result string, d time.Duration) {
	m.phases.WithLabelValues(phase, result).Observe(d.Seconds())
}

// BMCError implements conductor.Metrics.
func (m *Metrics) BMCError(driver, call string) {
	m.bmcErrors.WithLabelValues(driver, call).Inc()
}

// SensorsRead implements conductor.Metrics: the readings replace those of the last
// collection, so sensors and nodes that are gone disappear.
func (m *Metrics) SensorsRead(readings map[string][]conductor.Sensor) {
	m.sensorsMu.Lock()
	defer m.sensorsMu.Unlock()
	m.sensors.Reset()
	for node, rs := range readings {
		for _, r := range rs {
			m.sensors.WithLabelValues(node, r.Name, r.Type, r.Unit).Set(r.Value)
		}
	}
}

// DHCPRequest counts a DHCPv4 request of a message type ("DISCOVER", "REQUEST", ...).
func (m *Metrics) DHCPRequest(msgType string, answered bool) {
	m.dhcp.WithLabelValues(msgType, strconv.FormatBool(answered)).Inc()
}

// TFTPTransfer counts a TFTP read request and the bytes it sent.
func (m *Metrics) TFTPTransfer(ok bool, bytes int64) {
	result := "ok"
	if !ok {
		result = "error"
	}
	m.tftp.WithLabelValues(result).Inc()
	m.tftpBytes.Add(float64(bytes))
}

// HTTPBootRequest counts an HTTP boot request by its status.
func (m *Metrics) HTTPBootRequest(status int) {
	m.httpBoot.WithLabelValues(strconv.Itoa(status)).Inc()
}

// ImageLookup counts an image cache look-up.
func (m *Metrics) ImageLookup(hit bool) {
	result := "miss"
	if hit {
		result = "hit"
	}
	m.imageLookups.WithLabelValues(result).Inc()
}

// ImageDownloaded counts the bytes of a completed download.
func (m *Metrics) ImageDownloaded(bytes int64) { m.imageBytes.Add(float64(bytes)) }
