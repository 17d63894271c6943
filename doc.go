// Package ironwork holds the domain of the Ironwork bare-metal provisioning service: nodes,
// ports, portgroups, chassis, conductors, allocations and deploy templates, their provision and
// power states, the catalogue of hardware types and driver interfaces, and the error kinds that
// every other package reports.
//
// It performs no I/O: storage lives in internal/sqlstore, the REST API in internal/httpapi and
// the work on real hardware in internal/conductor and the driver packages.
package ironwork
