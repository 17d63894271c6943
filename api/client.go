// Package api is a small Go client for Ironic's REST API v1 as Ironwork serves it: requests
// with the microversion header, Ironic's error bodies decoded into *Error, and paging. It is
// what the ironwork CLI, the agent and the tests use; it holds no server logic.
package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// DefaultVersion is the microversion the client asks for: the newest Ironwork serves.
const DefaultVersion = "1.115"

// VersionHeader carries the API microversion of a request.
const VersionHeader = "X-OpenStack-Ironic-API-Version"

// Client talks to one Ironic-compatible endpoint.
type Client struct {
	// BaseURL is the endpoint, e.g. http://127.0.0.1:6385.
	BaseURL string
	// Version is the microversion sent with every request; empty means DefaultVersion.
	Version string
	// Username and Password are sent as HTTP basic credentials when Username is set.
	Username, Password string
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client
}

// Error is an error answer of the API.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

// IsStatus reports whether err is an API error with the given status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// Do sends a request with a JSON body (when body is not nil) and decodes a JSON answer into out
// (when out is not nil).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	v := c.Version
	if v == "" {
		v = DefaultVersion
	}
	h := http.Header{VersionHeader: {v}}
	if c.Username != "" {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password)))
	}
	return Call(ctx, c.HTTP, Request{
		Method: method, URL: strings.TrimRight(c.BaseURL, "/") + path, Header: h, Body: body, Limit: 256 << 20,
	}, out, nil)
}

// ErrorMessage extracts the message from an Ironic error body: {"error_message": "<JSON with
// faultstring>"}, or the auth middleware's {"error": {"message": ...}}.
func ErrorMessage(body []byte) string {
	var outer struct {
		ErrorMessage json.RawMessage `json:"error_message"`
		Error        struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &outer) != nil {
		return strings.TrimSpace(string(body))
	}
	if outer.Error.Message != "" {
		return outer.Error.Message
	}
	if len(outer.ErrorMessage) == 0 {
		// The agent's (IPA's) error body: {"type", "code", "message", "details"}.
		var ipa struct {
			Message string `json:"message"`
			Details string `json:"details"`
		}
		if json.Unmarshal(body, &ipa) == nil {
			for _, s := range []string{ipa.Details, ipa.Message} {
				if s != "" {
					return s
				}
			}
		}
		return strings.TrimSpace(string(body))
	}
	var s string
	if json.Unmarshal(outer.ErrorMessage, &s) != nil {
		return strings.TrimSpace(string(outer.ErrorMessage))
	}
	var inner struct {
		FaultString string `json:"faultstring"`
		Description string `json:"description"`
	}
	if json.Unmarshal([]byte(s), &inner) == nil {
		if inner.FaultString != "" {
			return inner.FaultString
		}
		if inner.Description != "" {
			return inner.Description
		}
	}
	return s
}

// List reads every page of a collection, following the "next" links, and returns the items.
func (c *Client) List(ctx context.Context, path, key string, query url.Values) ([]map[string]any, error) {
	var all []map[string]any
	next := path
	if len(query) > 0 {
		next += "?" + query.Encode()
	}
	for pages := 0; next != ""; pages++ {
		var page map[string]json.RawMessage
		if err := c.Do(ctx, http.MethodGet, next, nil, &page); err != nil {
			return nil, err
		}
		var items []map[string]any
		if err := json.Unmarshal(page[key], &items); err != nil {
			return nil, fmt.Errorf("decode %s: %w", key, err)
		}
		all = append(all, items...)
		next = ""
		var n string
		if raw, ok := page["next"]; ok && json.Unmarshal(raw, &n) == nil && len(items) > 0 {
			u, err := url.Parse(n)
			if err != nil {
				return nil, fmt.Errorf("bad next link %q: %w", n, err)
			}
			next = u.RequestURI()
		}
	}
	return all, nil
}

// PatchOp is one JSON PATCH operation.
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}
