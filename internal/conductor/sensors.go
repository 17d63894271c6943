package conductor

import (
	"context"
	"sync"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// Sensor is one reading of a node's hardware sensor: a temperature, a fan's speed, a voltage,
// a power draw.
type Sensor struct {
	// Name is the BMC's name of the sensor ("CPU Temp", "Fan1").
	Name string
	// Type is the kind of sensor as Ironic's sensor data names it: Temperature, Fan,
	// Voltage, Current, Power, or the BMC's own type name for others.
	Type string
	// Unit is the unit of Value: "celsius", "rpm", "volts", "amperes", "watts", or "" when
	// the BMC gives none.
	Unit  string
	Value float64
}

// SensorReader is the optional ability of a management (or power) interface to read a node's
// hardware sensors, as Ironic's management interface get_sensors_data.
type SensorReader interface {
	Sensors(ctx context.Context, t *Task) ([]Sensor, error)
}

// sensorReader returns the node's interface that reads sensors: management first, then power.
func (d *Driver) sensorReader() (SensorReader, bool) {
	if m, ok := d.impl[ironwork.ManagementInterface].(SensorReader); ok {
		return m, true
	}
	p, ok := d.impl[ironwork.PowerInterface].(SensorReader)
	return p, ok
}

// CollectSensors reads the sensors of this conductor's nodes whose driver can, with the power
// sync's bound on concurrent BMC requests, and hands all readings to the metrics at once
// (Ironic's send_sensor_data). Nodes in maintenance are skipped, as Ironic does unless told
// otherwise; a node whose BMC fails is counted as a BMC error and left out.
func (c *Conductor) CollectSensors(ctx context.Context) error {
	nodes, err := c.myNodes(ctx, sqlstore.NodeKeyFilter{}, func(k sqlstore.NodeKey) bool { return !k.Maintenance })
	if err != nil {
		return err
	}
	var mu sync.Mutex
	readings := map[string][]Sensor{}
	sem := make(chan struct{}, c.cfg.PowerSyncWorkers)
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n.Maintenance {
			continue
		}
		d, err := c.driverFor(n)
		if err != nil {
			continue
		}
		r, ok := d.sensorReader()
		if !ok {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			t := c.newTask(ctx, n, d)
			rctx, cancel := context.WithTimeout(ctx, c.cfg.PowerActionTimeout)
			defer cancel()
			got, err := r.Sensors(rctx, t)
			if err != nil {
				c.metrics.BMCError(n.Driver, "sensors")
				t.Log.Warn("read sensors", "error", err)
				return
			}
			mu.Lock()
			readings[n.UUID] = got
			mu.Unlock()
		})
	}
	wg.Wait()
	c.metrics.SensorsRead(readings)
	c.log.Debug("sensors collected", "nodes", len(readings))
	return ctx.Err()
}
