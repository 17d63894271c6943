package metrics

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// Store is what the fleet collector reads at scrape time.
type Store interface {
	// NodeCounts returns the node counts made at most maxAge ago (by any process sharing the
	// database) and when they were made.
	NodeCounts(ctx context.Context, maxAge time.Duration) ([]sqlstore.NodeCount, time.Time, error)
	ListConductors(ctx context.Context, marker string, limit int) ([]*ironwork.Conductor, error)
}

// Conductor is this process's conductor, as the fleet collector sees it.
type Conductor interface {
	Hostname() string
	// PowerSyncLag is the age of the oldest power sync of the conductor's nodes.
	PowerSyncLag(now time.Time) time.Duration
}

// Ring tells a conductor's share of its group's nodes.
type Ring interface {
	Share(group, host string) float64
}

// scrapeTimeout bounds the store queries of one scrape.
const scrapeTimeout = 10 * time.Second

// FleetOptions are what WatchFleet reads.
type FleetOptions struct {
	Store Store
	// HeartbeatTimeout is how old a conductor's heartbeat may be for it to count as alive.
	HeartbeatTimeout time.Duration
	// CountInterval is how old the node counts a scrape shows may be (metrics_count_interval):
	// the processes sharing a database count their nodes once per interval between them. 0
	// counts at every scrape.
	CountInterval time.Duration
	// Conductor, Group and Ring describe this process's conductor; nil Conductor for an
	// API-only process (no lag, no share).
	Conductor Conductor
	Group     string
	Ring      Ring
}

// WatchFleet registers the collector of the numbers read at scrape time: nodes by state (one
// grouped query, shared between processes for CountInterval) and when they were counted,
// live conductors by group, this conductor's hash-ring share and its power-sync lag.
func (m *Metrics) WatchFleet(opts FleetOptions) {
	m.reg.MustRegister(&fleet{opts: opts,
		nodes: prometheus.NewDesc(namespace+"_nodes", "Nodes by provision state, power state, maintenance and fault.",
			[]string{"provision_state", "power_state", "maintenance", "fault"}, nil),
		counted: prometheus.NewDesc(namespace+"_nodes_counted_timestamp_seconds", "When the nodes gauge was counted (Unix time): at most metrics_count_interval ago.",
			nil, nil),
		conductors: prometheus.NewDesc(namespace+"_conductors_alive", "Conductors whose heartbeat is recent, by conductor group.",
			[]string{"conductor_group"}, nil),
		share: prometheus.NewDesc(namespace+"_hash_ring_share", "Fraction of its group's hash ring (and so of the group's nodes, on average) this conductor manages.",
			[]string{"conductor", "conductor_group"}, nil),
		lag: prometheus.NewDesc(namespace+"_power_sync_lag_seconds", "Age of the oldest power sync of this conductor's nodes: time since its last complete power sync began.",
			[]string{"conductor"}, nil),
	})
}

type fleet struct {
	opts                                   FleetOptions
	nodes, counted, conductors, share, lag *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (f *fleet) Describe(ch chan<- *prometheus.Desc) {
	ch <- f.nodes
	ch <- f.counted
	ch <- f.conductors
	if f.opts.Conductor != nil {
		ch <- f.share
		ch <- f.lag
	}
}

// Collect implements prometheus.Collector.
func (f *fleet) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	now := time.Now()
	if counts, at, err := f.opts.Store.NodeCounts(ctx, f.opts.CountInterval); err != nil {
		ch <- prometheus.NewInvalidMetric(f.nodes, err)
	} else {
		ch <- prometheus.MustNewConstMetric(f.counted, prometheus.GaugeValue, float64(at.UnixMilli())/1000)
		for _, c := range counts {
			ch <- prometheus.MustNewConstMetric(f.nodes, prometheus.GaugeValue, float64(c.Count),
				string(c.ProvisionState), string(c.PowerState), strconv.FormatBool(c.Maintenance), c.Fault)
		}
	}
	if cs, err := f.opts.Store.ListConductors(ctx, "", 0); err != nil {
		ch <- prometheus.NewInvalidMetric(f.conductors, err)
	} else {
		alive := map[string]int{}
		for _, c := range cs {
			if _, ok := alive[c.ConductorGroup]; !ok {
				alive[c.ConductorGroup] = 0
			}
			if sqlstore.ConductorAlive(c, now, f.opts.HeartbeatTimeout) {
				alive[c.ConductorGroup]++
			}
		}
		for group, n := range alive {
			ch <- prometheus.MustNewConstMetric(f.conductors, prometheus.GaugeValue, float64(n), group)
		}
	}
	if c := f.opts.Conductor; c != nil {
		ch <- prometheus.MustNewConstMetric(f.share, prometheus.GaugeValue, f.opts.Ring.Share(f.opts.Group, c.Hostname()),
			c.Hostname(), f.opts.Group)
		ch <- prometheus.MustNewConstMetric(f.lag, prometheus.GaugeValue, c.PowerSyncLag(now).Seconds(), c.Hostname())
	}
}
