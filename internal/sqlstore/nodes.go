package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/ironwork/ironwork"
)

// ifaceCol stores one entry of a node's interface map.
type ifaceCol struct {
	m    *map[ironwork.InterfaceKind]string
	kind ironwork.InterfaceKind
}

func (c ifaceCol) Value() (driver.Value, error) {
	if v := (*c.m)[c.kind]; v != "" {
		return v, nil
	}
	return nil, nil
}

func (c ifaceCol) Scan(src any) error {
	if *c.m == nil {
		*c.m = map[ironwork.InterfaceKind]string{}
	}
	var s string
	if err := (nullStr[string]{&s}).Scan(src); err != nil {
		return err
	}
	if s != "" {
		(*c.m)[c.kind] = s
	}
	return nil
}

// nodeColumns lists the columns of the nodes table, except id, chassis_id and allocation_id,
// which are resolved separately.
func nodeColumns() []column[ironwork.Node] {
	type N = ironwork.Node
	cols := []column[N]{
		{"uuid", func(n *N) any { return &n.UUID }},
		{"name", func(n *N) any { return nullStr[string]{&n.Name} }},
		{"driver", func(n *N) any { return &n.Driver }},
		{"driver_info", func(n *N) any { return jsonCol[ironwork.JSONObject]{&n.DriverInfo} }},
		{"driver_internal_info", func(n *N) any { return jsonCol[ironwork.JSONObject]{&n.DriverInternalInfo} }},
		{"extra", func(n *N) any { return jsonCol[ironwork.JSONObject]{&n.Extra} }},
		{"instance_info", func(n *N) any { return jsonCol[ironwork.JSONObject]{&n.InstanceInfo} }},
		{"instance_uuid", func(n *N) any { return nullStr[string]{&n.InstanceUUID} }},
		{"instance_name", func(n *N) any { return nullStr[string]{&n.InstanceName} }},
		{"health", func(n *N) any { return nullStr[string]{&n.Health} }},
		{"properties", func(n *N) any { return jsonCol[ironwork.JSONObject]{&n.Properties} }},
		{"power_state", func(n *N) any { return nullStr[ironwork.PowerState]{&n.PowerState} }},
		{"target_power_state", func(n *N) any { return nullStr[ironwork.PowerState]{&n.TargetPowerState} }},
		{"provision_state", func(n *N) any { return nullStr[ironwork.ProvisionState]{&n.ProvisionState} }},
		{"target_provision_state", func(n *N) any { return nullStr[ironwork.ProvisionState]{&n.TargetProvisionState} }},
		{"provision_updated_at", func(n *N) any { return nullTime{&n.ProvisionUpdatedAt} }},
		{"last_error", func(n *N) any { return nullStr[string]{&n.LastError} }},
		{"maintenance", func(n *N) any { return boolCol{&n.Maintenance} }},
		{"maintenance_reason", func(n *N) any { return nullStr[string]{&n.MaintenanceReason} }},
		{"fault", func(n *N) any { return nullStr[string]{&n.Fault} }},
		{"console_enabled", func(n *N) any { return boolCol{&n.ConsoleEnabled} }},
		{"inspection_started_at", func(n *N) any { return nullTime{&n.InspectionStartedAt} }},
		{"inspection_finished_at", func(n *N) any { return nullTime{&n.InspectionFinishedAt} }},
		{"reservation", func(n *N) any { return nullStr[string]{&n.Reservation} }},
		{"conductor_affinity", func(n *N) any { return nullInt{&n.ConductorAffinity} }},
		{"raid_config", func(n *N) any { return jsonCol[ironwork.JSONObject]{&n.RAIDConfig} }},
		{"target_raid_config", func(n *N) any { return jsonCol[ironwork.JSONObject]{&n.TargetRAIDConfig} }},
		{"clean_step", func(n *N) any { return jsonCol[ironwork.JSONObject]{&n.CleanStep} }},
		{"deploy_step", func(n *N) any { return jsonCol[ironwork.JSONObject]{&n.DeployStep} }},
		{"service_step", func(n *N) any { return jsonCol[ironwork.JSONObject]{&n.ServiceStep} }},
		{"resource_class", func(n *N) any { return nullStr[string]{&n.ResourceClass} }},
		{"conductor_group", func(n *N) any { return &n.ConductorGroup }},
		{"automated_clean", func(n *N) any { return nullBool{&n.AutomatedClean} }},
		{"protected", func(n *N) any { return boolCol{&n.Protected} }},
		{"protected_reason", func(n *N) any { return nullStr[string]{&n.ProtectedReason} }},
		{"owner", func(n *N) any { return nullStr[string]{&n.Owner} }},
		{"lessee", func(n *N) any { return nullStr[string]{&n.Lessee} }},
		{"description", func(n *N) any { return nullStr[string]{&n.Description} }},
		{"retired", func(n *N) any { return boolCol{&n.Retired} }},
		{"retired_reason", func(n *N) any { return nullStr[string]{&n.RetiredReason} }},
		{"network_data", func(n *N) any { return jsonCol[ironwork.JSONObject]{&n.NetworkData} }},
		{"boot_mode", func(n *N) any { return nullStr[string]{&n.BootMode} }},
		{"secure_boot", func(n *N) any { return nullBool{&n.SecureBoot} }},
		{"shard", func(n *N) any { return nullStr[string]{&n.Shard} }},
		{"parent_node", func(n *N) any { return nullStr[string]{&n.ParentNode} }},
		{"disable_power_off", func(n *N) any { return boolCol{&n.DisablePowerOff} }},
		{"created_at", func(n *N) any { return timeCol{&n.CreatedAt} }},
		{"updated_at", func(n *N) any { return nullTime{&n.UpdatedAt} }},
	}
	for _, k := range ironwork.InterfaceKinds {
		cols = append(cols, column[N]{k.Field(), func(n *N) any { return ifaceCol{&n.Interfaces, k} }})
	}
	return cols
}

// nodeSortKeys are the node fields a list may be sorted by.
var nodeSortKeys = sortable{
	"id": "@.id", "uuid": "@.uuid", "name": "COALESCE(@.name, '')", "driver": "@.driver",
	"created_at": "@.created_at", "updated_at": "COALESCE(@.updated_at, 0)",
	"provision_state": "@.provision_state", "power_state": "COALESCE(@.power_state, '')",
	"provision_updated_at":   "COALESCE(@.provision_updated_at, 0)",
	"target_provision_state": "COALESCE(@.target_provision_state, '')",
	"target_power_state":     "COALESCE(@.target_power_state, '')",
	"maintenance":            "@.maintenance", "resource_class": "COALESCE(@.resource_class, '')",
	"instance_uuid": "COALESCE(@.instance_uuid, '')", "conductor_group": "@.conductor_group",
	"owner": "COALESCE(@.owner, '')", "lessee": "COALESCE(@.lessee, '')",
	"reservation": "COALESCE(@.reservation, '')", "fault": "COALESCE(@.fault, '')",
	"retired": "@.retired", "protected": "@.protected", "shard": "COALESCE(@.shard, '')",
	"inspection_started_at":  "COALESCE(@.inspection_started_at, 0)",
	"inspection_finished_at": "COALESCE(@.inspection_finished_at, 0)",
	"console_enabled":        "@.console_enabled", "boot_mode": "COALESCE(@.boot_mode, '')",
	"parent_node": "COALESCE(@.parent_node, '')", "description": "COALESCE(@.description, '')",
	"last_error": "COALESCE(@.last_error, '')", "maintenance_reason": "COALESCE(@.maintenance_reason, '')",
}

func (s *Store) nodeSelect() string {
	return "SELECT n.id, " + strings.Join(columnNames(nodeColumns(), "n."), ", ") +
		", c.uuid, a.uuid, " + s.traitsColumn() + " FROM nodes n LEFT JOIN chassis c ON c.id = n.chassis_id" +
		" LEFT JOIN allocations a ON a.id = n.allocation_id"
}

// traitsColumn is the expression that reads node n's traits in the node's own row, as a JSON
// array of strings in order (NULL or [] for none; traitList scans it): one query reads a node
// whole, with no second round trip for its traits.
func (s *Store) traitsColumn() string {
	if s.dialect == Postgres {
		return "(SELECT json_agg(t.trait ORDER BY t.trait) FROM node_traits t WHERE t.node_id = n.id)"
	}
	return "(SELECT json_group_array(t.trait ORDER BY t.trait) FROM node_traits t WHERE t.node_id = n.id)"
}

// traitList scans traitsColumn into a node's Traits (never nil).
type traitList struct{ p *[]string }

func (c traitList) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan traits from %T", src)
	}
	*c.p = []string{}
	if len(b) == 0 || string(b) == "[]" {
		return nil
	}
	if err := json.Unmarshal(b, c.p); err != nil {
		return fmt.Errorf("scan traits: %w", err)
	}
	return nil
}

func scanNode(sc interface{ Scan(...any) error }) (*ironwork.Node, error) {
	n := &ironwork.Node{}
	dest := append([]any{&n.ID}, columnRefs(nodeColumns(), n)...)
	dest = append(dest, nullStr[string]{&n.ChassisUUID}, nullStr[string]{&n.AllocationUUID}, traitList{&n.Traits})
	if err := sc.Scan(dest...); err != nil {
		return n, err
	}
	if n.Interfaces == nil {
		n.Interfaces = map[ironwork.InterfaceKind]string{}
	}
	return n, nil
}

// nodeWriteColumns are the columns a node write sets: every stored field plus the references
// resolved from UUIDs.
func nodeWriteColumns() []string {
	return append(columnNames(nodeColumns(), ""), "chassis_id", "allocation_id")
}

// nodeInsertColumns are the columns a node's insert sets: nodeWriteColumns and the ring key,
// which follows from the UUID that never changes (RingKey), so updates leave it alone.
func nodeInsertColumns() []string {
	return append(nodeWriteColumns(), "ring_key")
}

func nodeInsert() string {
	names := nodeInsertColumns()
	return fmt.Sprintf("INSERT INTO nodes (%s) VALUES (%s) RETURNING id", strings.Join(names, ", "), placeholders(len(names)))
}

func nodeUpdate() string {
	return fmt.Sprintf("UPDATE nodes SET %s WHERE id = ?", assignments(nodeWriteColumns()))
}

// nodeArgs returns the values of nodeWriteColumns for n, resolving its chassis and allocation.
func (s *Store) nodeArgs(ctx context.Context, q queryer, n *ironwork.Node) ([]any, error) {
	chassisID, err := s.idOf(ctx, q, "chassis", "Chassis", n.ChassisUUID)
	if err != nil {
		return nil, err
	}
	allocID, err := s.idOf(ctx, q, "allocations", "Allocation", n.AllocationUUID)
	if err != nil {
		return nil, err
	}
	return append(columnRefs(nodeColumns(), n), chassisID, allocID), nil
}

// hotStatements are the statements that run inside transactions on every node update; Open
// prepares them so that transactions find them cached.
func (s *Store) hotStatements() []string {
	out := []string{
		nodeUpdate(), nodeInsert(),
		"SELECT id FROM chassis WHERE uuid = ?", "SELECT id FROM allocations WHERE uuid = ?",
	}
	for _, cond := range []string{"n.uuid = ?", "n.name = ?"} {
		q := s.nodeSelect() + " WHERE " + cond
		out = append(out, q)
		if s.dialect == Postgres {
			out = append(out, q+" FOR UPDATE OF n")
		}
	}
	return out
}

// nodeIdentCond returns the condition that selects a node by UUID or by name.
func nodeIdentCond(ident string) (string, any) {
	if ironwork.IsUUID(ident) {
		return "n.uuid = ?", strings.ToLower(ident)
	}
	return "n.name = ?", ident
}

func (s *Store) getNode(ctx context.Context, q queryer, ident string, forUpdate bool) (*ironwork.Node, error) {
	cond, arg := nodeIdentCond(ident)
	query := s.nodeSelect() + " WHERE " + cond
	if forUpdate && s.dialect == Postgres {
		query += " FOR UPDATE OF n"
	}
	n, err := scanNode(s.queryRow(ctx, q, query, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("Node", ident)
	}
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", ident, err)
	}
	return n, nil
}

// GetNode returns the node with the given UUID or name.
func (s *Store) GetNode(ctx context.Context, ident string) (*ironwork.Node, error) {
	return s.getNode(ctx, s.db, ident, false)
}

// GetNodeByID returns the node with the given internal id.
func (s *Store) GetNodeByID(ctx context.Context, id int64) (*ironwork.Node, error) {
	n, err := scanNode(s.queryRow(ctx, s.db, s.nodeSelect()+" WHERE n.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("Node", fmt.Sprint(id))
	}
	if err != nil {
		return nil, fmt.Errorf("get node %d: %w", id, err)
	}
	return n, nil
}

func nodeConflict(err error, n *ironwork.Node) error {
	col, ok := uniqueViolation(err)
	if !ok {
		return err
	}
	switch col {
	case "name":
		return ironwork.Errorf(ironwork.ECONFLICT, "A node with name %s already exists.", n.Name)
	case "instance_uuid":
		return ironwork.Errorf(ironwork.ECONFLICT, "Instance %s is already associated with a node, it cannot be associated with this other node %s", n.InstanceUUID, n.UUID)
	default:
		return ironwork.Errorf(ironwork.ECONFLICT, "A node with UUID %s already exists.", n.UUID)
	}
}

// CreateNode stores a new node, filling in its UUID (when empty), id and creation time.
func (s *Store) CreateNode(ctx context.Context, n *ironwork.Node) error {
	if n.UUID == "" {
		n.UUID = uuid.NewString()
	}
	n.UUID = strings.ToLower(n.UUID)
	n.CreatedAt = s.nowUTC()
	n.UpdatedAt = nil
	if n.Interfaces == nil {
		n.Interfaces = map[ironwork.InterfaceKind]string{}
	}
	insert := func(ctx context.Context, q queryer) error {
		args, err := s.nodeArgs(ctx, q, n)
		if err != nil {
			return err
		}
		if err := s.queryRow(ctx, q, nodeInsert(), append(args, RingKey(n.UUID))...).Scan(&n.ID); err != nil {
			return nodeConflict(err, n)
		}
		return nil
	}
	var err error
	if s.writer == nil && len(n.Traits) == 0 && n.ChassisUUID == "" && n.AllocationUUID == "" {
		// PostgreSQL, and the node is one row that refers to no other: one statement is atomic
		// on its own, and saves the transaction's two round trips; nodes created at the same
		// time share it (createBatch).
		err = s.createBatched(ctx, n, insert)
	} else {
		err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			if err := insert(ctx, tx); err != nil {
				return err
			}
			return s.writeTraits(ctx, tx, n.ID, nil, n.Traits)
		})
	}
	if err == nil {
		s.notifyNode(n)
	}
	return err
}

func (s *Store) writeTraits(ctx context.Context, tx *sql.Tx, nodeID int64, old, new []string) error {
	for _, t := range old {
		if !slices.Contains(new, t) {
			if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM node_traits WHERE node_id = ? AND trait = ?"), nodeID, t); err != nil {
				return fmt.Errorf("remove trait %s: %w", t, err)
			}
		}
	}
	now := s.nowUTC().UnixMicro()
	for _, t := range new {
		if !slices.Contains(old, t) {
			// A trait named twice is stored once. Not by catching the unique violation: on
			// PostgreSQL any error aborts the transaction.
			if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO node_traits (node_id, trait, created_at) VALUES (?, ?, ?)
				ON CONFLICT (node_id, trait) DO NOTHING`), nodeID, t, now); err != nil {
				return fmt.Errorf("add trait %s: %w", t, err)
			}
		}
	}
	return nil
}

// UpdateNode reads the node with the given UUID or name, lets fn change it and writes the
// result, all in one transaction, so concurrent updates never lose each other's changes. fn's
// error aborts the update and is returned as is.
func (s *Store) UpdateNode(ctx context.Context, ident string, fn func(n *ironwork.Node) error) (*ironwork.Node, error) {
	return s.UpdateNodeWithHistory(ctx, ident, fn, nil)
}

// DeleteNode deletes the node with the given UUID or name, with its ports, portgroups, traits,
// history and inventory, after check (if not nil) has allowed it in the same transaction.
func (s *Store) DeleteNode(ctx context.Context, ident string, check func(n *ironwork.Node) error) error {
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		n, err := s.getNode(ctx, tx, ident, true)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(n); err != nil {
				return err
			}
		}
		for _, q := range []string{
			"DELETE FROM ports WHERE node_id = ?",
			"DELETE FROM portgroups WHERE node_id = ?",
			"DELETE FROM allocations WHERE node_id = ?",
			"DELETE FROM node_inventory WHERE node_id = ?",
			"DELETE FROM bios_settings WHERE node_id = ?",
			"DELETE FROM firmware_information WHERE node_id = ?",
			"DELETE FROM volume_connectors WHERE node_id = ?",
			"DELETE FROM volume_targets WHERE node_id = ?",
			"DELETE FROM nodes WHERE id = ?",
		} {
			if _, err := tx.ExecContext(ctx, s.rebind(q), n.ID); err != nil {
				return fmt.Errorf("delete node %s: %w", n.UUID, err)
			}
		}
		return nil
	})
}

// NodeFilter selects nodes in a list. Zero values select everything.
type NodeFilter struct {
	ProvisionState      string
	Maintenance         *bool
	Associated          *bool
	Retired             *bool
	Sharded             *bool
	Driver              string
	ResourceClass       string
	ConductorGroup      *string
	Fault               string
	Owner               string
	Lessee              string
	Project             string // owner or lessee
	DescriptionContains string
	ChassisUUID         string
	InstanceUUID        string
	InstanceName        string
	ParentNode          string
	Shards              []string
	ExcludeChildren     bool // only nodes without a parent_node
	Reserved            *bool
}

// ListNodes returns one page of the nodes matching f.
func (s *Store) ListNodes(ctx context.Context, f NodeFilter, p Page) ([]*ironwork.Node, error) {
	query, args, err := s.nodeListQuery(ctx, f, p)
	if err != nil {
		return nil, err
	}
	return s.queryNodes(ctx, "list nodes", query, args...)
}

// queryNodes runs a query of whole nodes (s.nodeSelect(), traits included) and returns them;
// rows that cannot be decoded are logged and skipped. what names the operation in errors.
func (s *Store) queryNodes(ctx context.Context, what, query string, args ...any) ([]*ironwork.Node, error) {
	rows, err := s.query(ctx, s.db, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []*ironwork.Node
	for rows.Next() {
		n, err := scanNode(rows)
		if errors.Is(err, ErrUndecodable) {
			s.log.ErrorContext(ctx, "skip undecodable node", "node", n.UUID, "error", err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("scan node: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// nodeListQuery builds the query of one page of the nodes matching f.
func (s *Store) nodeListQuery(ctx context.Context, f NodeFilter, p Page) (string, []any, error) {
	return s.nodeListQueryOf(ctx, s.nodeSelect(), f, p)
}

// nodeListQueryOf is nodeListQuery with another select list: sel selects from nodes n joined
// to chassis c (as nodeSelect does).
func (s *Store) nodeListQueryOf(ctx context.Context, sel string, f NodeFilter, p Page) (string, []any, error) {
	var w where
	if f.ProvisionState != "" {
		w.add("n.provision_state = ?", f.ProvisionState)
	}
	if f.Maintenance != nil {
		w.add("n.maintenance = ?", *f.Maintenance)
	}
	if f.Retired != nil {
		w.add("n.retired = ?", *f.Retired)
	}
	if f.Associated != nil {
		if *f.Associated {
			w.add("n.instance_uuid IS NOT NULL")
		} else {
			w.add("n.instance_uuid IS NULL")
		}
	}
	if f.Sharded != nil {
		if *f.Sharded {
			w.add("n.shard IS NOT NULL")
		} else {
			w.add("n.shard IS NULL")
		}
	}
	if f.Reserved != nil {
		if *f.Reserved {
			w.add("n.reservation IS NOT NULL")
		} else {
			w.add("n.reservation IS NULL")
		}
	}
	for col, v := range map[string]string{
		"n.driver": f.Driver, "n.resource_class": f.ResourceClass, "n.fault": f.Fault,
		"n.owner": f.Owner, "n.lessee": f.Lessee, "n.instance_name": f.InstanceName, "n.instance_uuid": strings.ToLower(f.InstanceUUID),
		"n.parent_node": f.ParentNode, "c.uuid": strings.ToLower(f.ChassisUUID),
	} {
		if v != "" {
			w.add(col+" = ?", v)
		}
	}
	if f.ConductorGroup != nil {
		w.add("LOWER(n.conductor_group) = ?", strings.ToLower(*f.ConductorGroup))
	}
	if f.Project != "" {
		w.add("(n.owner = ? OR n.lessee = ?)", f.Project, f.Project)
	}
	if f.DescriptionContains != "" {
		w.add(`n.description LIKE ? ESCAPE '\'`, "%"+escapeLike(f.DescriptionContains)+"%")
	}
	if len(f.Shards) > 0 {
		args := make([]any, len(f.Shards))
		for i, sh := range f.Shards {
			args[i] = sh
		}
		w.add("n.shard IN ("+placeholders(len(args))+")", args...)
	}
	if f.ExcludeChildren {
		w.add("n.parent_node IS NULL")
	}
	tail, err := s.pageClause(ctx, s.db, &w, "nodes", "n", "Node", nodeSortKeys, p)
	if err != nil {
		return "", nil, err
	}
	return sel + w.sql() + tail, w.args, nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`%`, `\%`, `_`, `\_`).Replace(s)
}

// ShardCount is the number of nodes in one shard.
type ShardCount struct {
	Name  string
	Count int
}

// Shards counts the nodes of every shard, by name.
func (s *Store) Shards(ctx context.Context) ([]ShardCount, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT shard, COUNT(*) FROM nodes WHERE shard IS NOT NULL GROUP BY shard ORDER BY shard")
	if err != nil {
		return nil, fmt.Errorf("count shards: %w", err)
	}
	defer rows.Close()
	var out []ShardCount
	for rows.Next() {
		var sc ShardCount
		if err := rows.Scan(&sc.Name, &sc.Count); err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}
