package vbmc

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The Redfish EventService: subscriptions (EventDestination resources) can be created, read
// and deleted, checked as a BMC checks them. The service keeps them in memory; it sends no
// events (there are none to send: see docs/vendor-passthru.md).

// eventTypes are the EventTypesForSubscription the service offers.
var eventTypes = []string{"StatusChange", "ResourceUpdated", "ResourceAdded", "ResourceRemoved", "Alert"}

// maxSubscriptions bounds the subscriptions a service keeps, as a BMC's memory does.
const maxSubscriptions = 32

const eventsPath = "/redfish/v1/EventService"

// subscription is one EventDestination.
type subscription struct {
	id          string
	destination string
	context     string
	eventTypes  []string
}

// eventService holds the subscriptions; its zero value is empty and ready.
type eventService struct {
	mu   sync.Mutex
	subs map[string]subscription
	next int
}

func (s subscription) doc() map[string]any {
	return map[string]any{"@odata.id": eventsPath + "/Subscriptions/" + s.id, "@odata.type": "#EventDestination.v1_7_0.EventDestination",
		"Id": s.id, "Name": "Event Subscription " + s.id, "Destination": s.destination, "Context": s.context,
		"Protocol": "Redfish", "SubscriptionType": "RedfishEvent", "EventTypes": s.eventTypes,
		// Redfish: HttpHeaders are never shown (they may hold credentials).
		"HttpHeaders": []any{}}
}

// serveEvents serves /redfish/v1/EventService[/Subscriptions[/{id}]].
func (v *VBMC) serveEvents(w http.ResponseWriter, r *http.Request, rest string) {
	es := &v.events
	switch {
	case rest == "" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": eventsPath, "@odata.type": "#EventService.v1_5_0.EventService",
			"Id": "EventService", "Name": "Event Service", "ServiceEnabled": true, "DeliveryRetryAttempts": 3,
			"DeliveryRetryIntervalSeconds": 30, "EventTypesForSubscription": eventTypes,
			"Subscriptions": map[string]any{"@odata.id": eventsPath + "/Subscriptions"}})
	case rest == "/Subscriptions" && r.Method == http.MethodGet:
		es.mu.Lock()
		ids := make([]string, 0, len(es.subs))
		for id := range es.subs {
			ids = append(ids, id)
		}
		es.mu.Unlock()
		sort.Slice(ids, func(i, j int) bool { a, _ := strconv.Atoi(ids[i]); b, _ := strconv.Atoi(ids[j]); return a < b })
		members := make([]map[string]any, len(ids))
		for i, id := range ids {
			members[i] = map[string]any{"@odata.id": eventsPath + "/Subscriptions/" + id}
		}
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": eventsPath + "/Subscriptions",
			"@odata.type": "#EventDestinationCollection.EventDestinationCollection", "Name": "Event Subscriptions Collection",
			"Members@odata.count": len(members), "Members": members})
	case rest == "/Subscriptions" && r.Method == http.MethodPost:
		sub, err := parseSubscription(r.Body)
		if err != nil {
			redfishError(w, http.StatusBadRequest, err.Error())
			return
		}
		es.mu.Lock()
		if len(es.subs) >= maxSubscriptions {
			es.mu.Unlock()
			redfishError(w, http.StatusBadRequest, fmt.Sprintf("the service keeps at most %d subscriptions", maxSubscriptions))
			return
		}
		if es.subs == nil {
			es.subs = map[string]subscription{}
		}
		es.next++
		sub.id = strconv.Itoa(es.next)
		es.subs[sub.id] = sub
		es.mu.Unlock()
		v.log.Info("event subscription created", "id", sub.id, "destination", sub.destination)
		w.Header().Set("Location", eventsPath+"/Subscriptions/"+sub.id)
		writeJSON(w, http.StatusCreated, sub.doc())
	case strings.HasPrefix(rest, "/Subscriptions/"):
		id := strings.TrimPrefix(rest, "/Subscriptions/")
		es.mu.Lock()
		sub, ok := es.subs[id]
		if ok && r.Method == http.MethodDelete {
			delete(es.subs, id)
		}
		es.mu.Unlock()
		switch {
		case !ok:
			redfishError(w, http.StatusNotFound, "no subscription "+id)
		case r.Method == http.MethodGet:
			writeJSON(w, http.StatusOK, sub.doc())
		case r.Method == http.MethodDelete:
			v.log.Info("event subscription deleted", "id", id)
			w.WriteHeader(http.StatusNoContent)
		default:
			redfishError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
		}
	default:
		redfishError(w, http.StatusNotFound, "no resource at "+r.URL.Path)
	}
}

// parseSubscription reads and checks a new subscription: Destination an http(s) URL, Protocol
// Redfish, EventTypes among the offered ones, Context a string, HttpHeaders a list of objects
// of strings; no other property.
func parseSubscription(body io.Reader) (subscription, error) {
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(body, 1<<16)).Decode(&raw); err != nil {
		return subscription{}, fmt.Errorf("malformed JSON: %w", err)
	}
	sub := subscription{eventTypes: []string{}}
	for k, v := range raw {
		var err error
		switch k {
		case "Destination":
			err = json.Unmarshal(v, &sub.destination)
		case "Context":
			err = json.Unmarshal(v, &sub.context)
			if err == nil && len(sub.context) > 256 {
				err = fmt.Errorf("longer than 256 characters")
			}
		case "Protocol":
			var p string
			if err = json.Unmarshal(v, &p); err == nil && p != "Redfish" {
				err = fmt.Errorf("%q is not supported: only Redfish", p)
			}
		case "SubscriptionType":
			var t string
			if err = json.Unmarshal(v, &t); err == nil && t != "RedfishEvent" {
				err = fmt.Errorf("%q is not supported: only RedfishEvent", t)
			}
		case "EventTypes":
			if err = json.Unmarshal(v, &sub.eventTypes); err == nil {
				for _, t := range sub.eventTypes {
					if !slices.Contains(eventTypes, t) {
						err = fmt.Errorf("%q is not one of %s", t, strings.Join(eventTypes, ", "))
					}
				}
			}
		case "HttpHeaders":
			var h []map[string]string
			err = json.Unmarshal(v, &h)
		default:
			return subscription{}, fmt.Errorf("property %s is not known", k)
		}
		if err != nil {
			return subscription{}, fmt.Errorf("property %s: %w", k, err)
		}
	}
	u, err := url.Parse(sub.destination)
	if sub.destination == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return subscription{}, fmt.Errorf("property Destination: %q is not an http or https URL", sub.destination)
	}
	return sub, nil
}
