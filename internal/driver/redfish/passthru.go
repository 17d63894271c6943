package redfish

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// Vendor is the redfish vendor interface (Ironic's RedfishVendorPassthru): BMC event
// subscriptions (create_subscription, get_all_subscriptions, get_subscription,
// delete_subscription; Metal3's BMCEventSubscription uses them) and eject_vmedia.
type Vendor struct{ Interface }

var _ conductor.Vendor = Vendor{}

// subscriptionFields are the members of a subscription the methods answer, Ironic's.
var subscriptionFields = []string{"Id", "Context", "Protocol", "Destination", "EventTypes"}

// ejectDevices maps the boot_device values eject_vmedia takes onto Redfish media types.
var ejectDevices = map[string]schemas.VirtualMediaType{
	"cd": schemas.CDVirtualMediaType, "dvd": schemas.DVDVirtualMediaType,
	"floppy": schemas.FloppyVirtualMediaType, "usb": schemas.USBStickVirtualMediaType,
}

// VendorMethods implements conductor.Vendor with Ironic's methods and descriptions.
func (Vendor) VendorMethods() map[string]conductor.PassthruMethod {
	return map[string]conductor.PassthruMethod{
		"eject_vmedia": {HTTPMethods: []string{"POST"}, Async: true, RequireExclusiveLock: true,
			Description: "Eject a virtual media device. If no device is provided then all attached devices will be ejected. " +
				"Optional arguments: 'boot_device' - the boot device to eject, either 'cd', 'dvd', 'usb', or 'floppy'"},
		"create_subscription": {HTTPMethods: []string{"POST"}, RequireExclusiveLock: true,
			Description: "Creates a subscription on a node. Required argument: a dictionary of {'Destination': 'destination_url'}"},
		"delete_subscription": {HTTPMethods: []string{"DELETE"}, RequireExclusiveLock: true,
			Description: "Delete a subscription on a node. Required argument: a dictionary of {'id': 'subscription_bmc_id'}"},
		"get_all_subscriptions": {HTTPMethods: []string{"GET"}, RequireExclusiveLock: true,
			Description: "Returns all subscriptions on the node."},
		"get_subscription": {HTTPMethods: []string{"GET"}, RequireExclusiveLock: true,
			Description: "Get a subscription on the node. Required argument: a dictionary of {'id': 'subscription_bmc_id'}"},
	}
}

// ValidatePassthru implements conductor.Vendor, checking the arguments as Ironic does before
// anything is sent to the BMC (EventTypes against the BMC's EventTypesForSubscription).
func (d Vendor) ValidatePassthru(ctx context.Context, t *conductor.Task, call conductor.PassthruCall) error {
	if _, err := parseInfo(t.Node); err != nil {
		return err
	}
	args := call.Args
	switch call.Method {
	case "eject_vmedia":
		if dev, ok := args["boot_device"]; ok && dev != nil {
			s, _ := dev.(string)
			if _, ok := ejectDevices[s]; !ok {
				return ironwork.Errorf(ironwork.EINVALID, "Boot device %v is not a valid value (valid are cd, dvd, floppy, usb)", dev)
			}
		}
	case "create_subscription":
		return d.validateSubscription(ctx, t, args)
	case "delete_subscription", "get_subscription":
		if id, _ := args["id"].(string); id == "" {
			return ironwork.Errorf(ironwork.EINVALID, "id can't be None")
		}
		if id, _ := args["id"].(string); strings.ContainsAny(id, "/?#") || id == "." || id == ".." {
			return ironwork.Errorf(ironwork.EINVALID, "id %q is not a subscription id", id)
		}
	}
	return nil
}

func (d Vendor) validateSubscription(ctx context.Context, t *conductor.Task, args map[string]any) error {
	if ctxv, ok := args["Context"]; ok {
		if _, ok := ctxv.(string); !ok {
			return ironwork.Errorf(ironwork.EINVALID, "Context %v is not a valid string", ctxv)
		}
	}
	if p, ok := args["Protocol"]; ok {
		if _, ok := p.(string); !ok {
			return ironwork.Errorf(ironwork.EINVALID, "Protocol %v is not a string", p)
		}
	}
	if h, ok := args["HttpHeaders"]; ok && h != nil {
		list, ok := h.([]any)
		if !ok {
			return ironwork.Errorf(ironwork.EINVALID, "HttpHeaders %v is not a list of headers", h)
		}
		for _, e := range list {
			if _, ok := e.(map[string]any); !ok {
				return ironwork.Errorf(ironwork.EINVALID, "HttpHeaders %v is not a list of headers", h)
			}
		}
	}
	dest, _ := args["Destination"].(string)
	if u, err := url.Parse(dest); dest == "" || err != nil || u.Scheme == "" || u.Host == "" {
		return ironwork.Errorf(ironwork.EINVALID, "Destination %v is not a valid URI", args["Destination"])
	}
	et, ok := args["EventTypes"]
	if !ok || et == nil {
		return nil
	}
	list, isList := et.([]any)
	var allowed []string
	if isList {
		es, err := d.eventService(ctx, t)
		if err != nil {
			return err
		}
		defer es.done()
		allowed = es.types
	}
	for _, e := range list {
		if s, _ := e.(string); !slices.Contains(allowed, s) {
			isList = false
		}
	}
	if !isList {
		return ironwork.Errorf(ironwork.EINVALID, "EventTypes %v is not a valid value, allowed values %v", et, allowed)
	}
	return nil
}

// CallPassthru implements conductor.Vendor.
func (d Vendor) CallPassthru(ctx context.Context, t *conductor.Task, call conductor.PassthruCall) (any, error) {
	switch call.Method {
	case "eject_vmedia":
		dev, _ := call.Args["boot_device"].(string)
		return nil, d.ejectMedia(ctx, t, dev)
	case "create_subscription":
		return d.createSubscription(ctx, t, call.Args)
	case "delete_subscription":
		return nil, d.deleteSubscription(ctx, t, call.Args["id"].(string))
	case "get_all_subscriptions":
		es, err := d.eventService(ctx, t)
		if err != nil {
			return nil, err
		}
		defer es.done()
		return getObject(es.client, es.subscriptions)
	case "get_subscription":
		es, err := d.eventService(ctx, t)
		if err != nil {
			return nil, err
		}
		defer es.done()
		id := call.Args["id"].(string)
		doc, err := getObject(es.client, strings.TrimRight(es.subscriptions, "/")+"/"+id)
		if err != nil {
			return nil, ironwork.Errorf(ironwork.EINVALID, "Redfish get_subscription failed for subscription %s on node %s. Error: %s", id, t.Node.UUID, err)
		}
		return filterSubscription(doc), nil
	}
	return nil, ironwork.Errorf(ironwork.EINVALID, "No handler for method %s", call.Method)
}

// eventService is what the subscription methods need of the BMC's EventService.
type eventService struct {
	client        schemas.Client
	subscriptions string   // path of the Subscriptions collection
	types         []string // EventTypesForSubscription
	done          func()
}

// eventService connects to the node's BMC and reads its EventService; the caller calls done.
func (d Vendor) eventService(ctx context.Context, t *conductor.Task) (*eventService, error) {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return nil, err
	}
	c := sys.GetClient()
	fail := func(err error) (*eventService, error) {
		done()
		return nil, ironwork.Errorf(ironwork.EINVALID, "The BMC of node %s offers no usable EventService: %s", t.Node.UUID, err)
	}
	root, err := getObject(c, "/redfish/v1/")
	if err != nil {
		return fail(err)
	}
	path := odataID(root["EventService"])
	if path == "" {
		return fail(fmt.Errorf("the service root links no EventService"))
	}
	doc, err := getObject(c, path)
	if err != nil {
		return fail(err)
	}
	es := &eventService{client: c, subscriptions: odataID(doc["Subscriptions"]), done: done}
	if es.subscriptions == "" {
		return fail(fmt.Errorf("%s links no Subscriptions", path))
	}
	if list, ok := doc["EventTypesForSubscription"].([]any); ok {
		for _, e := range list {
			if s, ok := e.(string); ok {
				es.types = append(es.types, s)
			}
		}
	}
	return es, nil
}

func (d Vendor) createSubscription(ctx context.Context, t *conductor.Task, args map[string]any) (any, error) {
	payload := map[string]any{"Destination": args["Destination"], "Protocol": "Redfish", "Context": "", "EventTypes": []any{"Alert"}}
	for _, k := range []string{"Protocol", "Context", "EventTypes"} {
		if v, ok := args[k]; ok && v != nil {
			payload[k] = v
		}
	}
	if h, ok := args["HttpHeaders"].([]any); ok && len(h) > 0 {
		payload["HttpHeaders"] = h
	}
	fail := func(err error) (any, error) {
		// The payload's HttpHeaders may carry credentials: they are not repeated.
		return nil, ironwork.Errorf(ironwork.EINVALID, "Failed to create subscription on node %s. Destination: %v. Error: %s", t.Node.UUID, payload["Destination"], err)
	}
	es, err := d.eventService(ctx, t)
	if err != nil {
		return nil, err
	}
	defer es.done()
	resp, err := es.client.Post(es.subscriptions, payload)
	if err != nil {
		return fail(err)
	}
	doc, err := readJSON(resp)
	if err != nil {
		return fail(err)
	}
	if loc := resp.Header.Get("Location"); loc != "" && doc["Id"] == nil {
		// A BMC that answers with only a Location: read what it made.
		if u, err := url.Parse(loc); err == nil {
			if doc, err = getObject(es.client, u.Path); err != nil {
				return fail(err)
			}
		}
	}
	t.Log.Info("Redfish event subscription created", "id", doc["Id"])
	return filterSubscription(doc), nil
}

func (d Vendor) deleteSubscription(ctx context.Context, t *conductor.Task, id string) error {
	es, err := d.eventService(ctx, t)
	if err != nil {
		return err
	}
	defer es.done()
	resp, err := es.client.Delete(strings.TrimRight(es.subscriptions, "/") + "/" + id)
	if err == nil {
		_, err = readJSON(resp)
	}
	if err != nil {
		return ironwork.Errorf(ironwork.ENOTFOUND, "Redfish delete_subscription failed for subscription %s on node %s. Error: %s", id, t.Node.UUID, err)
	}
	t.Log.Info("Redfish event subscription deleted", "id", id)
	return nil
}

// ejectMedia ejects the inserted virtual media of the system's managers: those of one media
// type when device is given (cd, dvd, floppy, usb), all of them otherwise.
func (d Vendor) ejectMedia(ctx context.Context, t *conductor.Task, device string) error {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return err
	}
	defer done()
	managers, err := sys.ManagedBy()
	if err != nil {
		return fmt.Errorf("read the managers of Redfish system %s: %w", sys.ODataID, err)
	}
	for _, m := range managers {
		media, err := m.VirtualMedia()
		if err != nil {
			continue
		}
		for _, vm := range media {
			if vm.Inserted == nil || !*vm.Inserted || (device != "" && !slices.Contains(vm.MediaTypes, ejectDevices[device])) {
				continue
			}
			tmi, err := vm.EjectMedia()
			if err != nil {
				return fmt.Errorf("eject %s from %s: %w", vm.Image, vm.ODataID, err)
			}
			if tmi != nil && tmi.TaskMonitor != "" {
				if err := d.waitTask(ctx, sys, tmi, time.Minute); err != nil {
					return fmt.Errorf("eject from %s: %w", vm.ODataID, err)
				}
			}
			t.Log.Info("virtual media ejected", "media", vm.ODataID)
		}
	}
	return nil
}

func filterSubscription(doc map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range subscriptionFields {
		if v, ok := doc[k]; ok {
			out[k] = v
		}
	}
	return out
}

func odataID(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["@odata.id"].(string)
	return s
}

// getObject reads a Redfish resource as a JSON object.
func getObject(c schemas.Client, path string) (map[string]any, error) {
	resp, err := c.Get(path)
	if err != nil {
		return nil, err
	}
	return readJSON(resp)
}

// readJSON reads a response's JSON object (an empty object for an empty body) and closes it.
func readJSON(resp *http.Response) (map[string]any, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", resp.Request.URL.Path, err)
	}
	if resp.StatusCode >= 400 {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	out := map[string]any{}
	if len(strings.TrimSpace(string(body))) == 0 {
		return out, nil
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", resp.Request.URL.Path, err)
	}
	return out, nil
}
