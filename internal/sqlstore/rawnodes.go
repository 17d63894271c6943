package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ironwork/ironwork"
)

// NodeJSONFields are the node columns that hold a free-form JSON object; a RawNode keeps them
// as the stored text so that a list can send them on without decoding and re-encoding them.
var NodeJSONFields = [...]string{"driver_info", "driver_internal_info", "extra", "instance_info", "properties",
	"raid_config", "target_raid_config", "clean_step", "deploy_step", "service_step", "network_data"}

// RawNode is a node read for a list: every field of Node is set except the JSON objects named
// in NodeJSONFields, which are left nil and kept as their stored text (see JSON and Decode).
type RawNode struct {
	Node *ironwork.Node
	// Revision is the node's revision when it was read (see ListNodeRevisions).
	Revision int64
	json     [len(NodeJSONFields)]rawText
}

// JSON returns the stored text of the JSON field name; ok is false when the column is NULL
// (shown as an empty object) or name is not a JSON field.
func (r *RawNode) JSON(name string) (raw string, ok bool) {
	i := slices.Index(NodeJSONFields[:], name)
	if i < 0 {
		return "", false
	}
	return r.json[i].s, r.json[i].set
}

// Decode decodes the stored text of the JSON field name into the node, as a full read does;
// the error wraps ErrUndecodable when the text is not a JSON object.
func (r *RawNode) Decode(name string) error {
	i := slices.Index(NodeJSONFields[:], name)
	p := nodeJSONField(r.Node, name)
	if i < 0 || p == nil {
		return fmt.Errorf("decode node field %s: not a JSON field", name)
	}
	var src any
	if r.json[i].set {
		src = r.json[i].s
	}
	return jsonCol[ironwork.JSONObject]{p}.Scan(src)
}

// nodeJSONField returns the field of n that stores the JSON column name, or nil.
func nodeJSONField(n *ironwork.Node, name string) *ironwork.JSONObject {
	switch name {
	case "driver_info":
		return &n.DriverInfo
	case "driver_internal_info":
		return &n.DriverInternalInfo
	case "extra":
		return &n.Extra
	case "instance_info":
		return &n.InstanceInfo
	case "properties":
		return &n.Properties
	case "raid_config":
		return &n.RAIDConfig
	case "target_raid_config":
		return &n.TargetRAIDConfig
	case "clean_step":
		return &n.CleanStep
	case "deploy_step":
		return &n.DeployStep
	case "service_step":
		return &n.ServiceStep
	case "network_data":
		return &n.NetworkData
	}
	return nil
}

// rawText scans a text column as it is stored; set is false for NULL. A *rawText fits in an
// interface without an allocation.
type rawText struct {
	s   string
	set bool
}

func (c *rawText) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		c.s, c.set = "", false
	case string:
		c.s, c.set = v, true
	case []byte:
		c.s, c.set = string(v), true
	default:
		return fmt.Errorf("scan text column from %T", src)
	}
	return nil
}

// ListNodesRaw returns one page of the nodes matching f as ListNodes does, with their JSON
// objects left undecoded and their revisions. It reads the same rows in the same query.
func (s *Store) ListNodesRaw(ctx context.Context, f NodeFilter, p Page) ([]*RawNode, error) {
	query, args, err := s.nodeListQueryOf(ctx, s.rawNodeSelect(), f, p)
	if err != nil {
		return nil, err
	}
	return s.queryRawNodes(ctx, "list nodes", query, args...)
}

// NodeRevision is one node of a page as ListNodeRevisions reads it.
type NodeRevision struct {
	ID       int64
	Revision int64
}

// ListNodeRevisions returns the id and revision of each node of the page ListNodesRaw would
// return for f and p, in the same order, reading nothing else. A node's revision changes with
// every write of its row or its traits (migration 0016's triggers, whoever writes), so a node
// whose (id, revision) is unchanged is shown as it was.
func (s *Store) ListNodeRevisions(ctx context.Context, f NodeFilter, p Page) ([]NodeRevision, error) {
	sel := "SELECT n.id, n.revision FROM nodes n LEFT JOIN chassis c ON c.id = n.chassis_id"
	p.markerInQuery = true
	query, args, err := s.nodeListQueryOf(ctx, sel, f, p)
	if err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, s.db, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list node revisions: %w", err)
	}
	defer rows.Close()
	out := make([]NodeRevision, 0, max(p.Limit, 0))
	for rows.Next() {
		var r NodeRevision
		if err := rows.Scan(&r.ID, &r.Revision); err != nil {
			return nil, fmt.Errorf("scan node revision: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list node revisions: %w", err)
	}
	if len(out) == 0 && p.Marker != "" {
		// Past the last node, or a marker that names no node (see Page.markerInQuery).
		if err := s.markerExists(ctx, "nodes", "Node", p.Marker); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// NodesRawByID returns the nodes with the given ids as ListNodesRaw reads them, ordered by id;
// ids of nodes that no longer exist are left out.
func (s *Store) NodesRawByID(ctx context.Context, ids []int64) ([]*RawNode, error) {
	var out []*RawNode
	for chunk := range slices.Chunk(ids, maxInList) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		nodes, err := s.queryRawNodes(ctx, "get nodes by id",
			s.rawNodeSelect()+" WHERE n.id IN ("+placeholders(len(args))+") ORDER BY n.id", args...)
		if err != nil {
			return nil, err
		}
		out = append(out, nodes...)
	}
	return out, nil
}

// rawNodeSelect is nodeSelect with the revision last.
func (s *Store) rawNodeSelect() string {
	return "SELECT n.id, " + strings.Join(columnNames(nodeColumns(), "n."), ", ") +
		", c.uuid, a.uuid, " + s.traitsColumn() + ", n.revision FROM nodes n LEFT JOIN chassis c ON c.id = n.chassis_id" +
		" LEFT JOIN allocations a ON a.id = n.allocation_id"
}

// queryRawNodes runs a query of rawNodeSelect's columns; what names it in errors.
func (s *Store) queryRawNodes(ctx context.Context, what, query string, args ...any) ([]*RawNode, error) {
	rows, err := s.query(ctx, s.db, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	cols := nodeColumns()
	slot := make([]int, len(cols))  // index in NodeJSONFields, or -1
	iface := make([]int, len(cols)) // index in ironwork.InterfaceKinds, or -1
	for i, c := range cols {
		slot[i] = slices.Index(NodeJSONFields[:], c.name)
		iface[i] = slices.IndexFunc(ironwork.InterfaceKinds, func(k ironwork.InterfaceKind) bool { return k.Field() == c.name })
	}
	var (
		out    []*RawNode
		dest   = make([]any, len(cols)+5)
		ifaces = make([]rawText, len(ironwork.InterfaceKinds))
	)
	for rows.Next() {
		r := &RawNode{Node: &ironwork.Node{}}
		n := r.Node
		dest[0] = &n.ID
		for i, c := range cols {
			switch {
			case slot[i] >= 0:
				dest[i+1] = &r.json[slot[i]]
			case iface[i] >= 0:
				dest[i+1] = &ifaces[iface[i]]
			default:
				dest[i+1] = c.ref(n)
			}
		}
		dest[len(cols)+1], dest[len(cols)+2] = nullStr[string]{&n.ChassisUUID}, nullStr[string]{&n.AllocationUUID}
		dest[len(cols)+3] = traitList{&n.Traits}
		dest[len(cols)+4] = &r.Revision
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("scan node: %w", err)
		}
		n.Interfaces = make(map[ironwork.InterfaceKind]string, len(ifaces))
		for k, t := range ifaces {
			if t.s != "" {
				n.Interfaces[ironwork.InterfaceKinds[k]] = t.s
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
