package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// keystone creates the run's projects, users and role assignments and issues their tokens, with
// the bootstrap administrator's system-scoped token.
type keystone struct {
	base   string
	client *http.Client
	admin  string // system-scoped token of the bootstrap admin
}

// token gets a token by password: scoped to the project named project, or to the system when
// project is "".
func (k *keystone) token(ctx context.Context, user, password, project string) (string, error) {
	scope := map[string]any{"system": map[string]any{"all": true}}
	if project != "" {
		scope = map[string]any{"project": map[string]any{"name": project, "domain": map[string]string{"name": "Default"}}}
	}
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "password": password, "domain": map[string]string{"name": "Default"}}}},
		"scope": scope}}
	resp, _, err := k.call(ctx, http.MethodPost, "/auth/tokens", "", body)
	if err != nil {
		return "", fmt.Errorf("get token of %s: %w", user, err)
	}
	return resp.Header.Get("X-Subject-Token"), nil
}

// call sends a JSON request to Keystone; a status of 300 or more is an error.
func (k *keystone) call(ctx context.Context, method, path, token string, body any) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode >= 300 {
		return nil, nil, fmt.Errorf("keystone %s %s: status %d: %s", method, path, resp.StatusCode, b)
	}
	return resp, b, nil
}

// id finds the object of kind ("project", "user", "role") named name, creating it with fields
// when it does not exist, and returns its id.
func (k *keystone) id(ctx context.Context, kind, name string, fields map[string]any) (string, error) {
	_, b, err := k.call(ctx, http.MethodGet, "/"+kind+"s?name="+url.QueryEscape(name), k.admin, nil)
	if err != nil {
		return "", err
	}
	var list map[string]json.RawMessage
	var l []struct{ ID string }
	if err := json.Unmarshal(b, &list); err != nil {
		return "", fmt.Errorf("decode %s list: %w", kind, err)
	}
	if err := json.Unmarshal(list[kind+"s"], &l); err != nil {
		return "", fmt.Errorf("decode %s list: %w", kind, err)
	}
	if len(l) > 0 {
		return l[0].ID, nil
	}
	if fields == nil {
		fields = map[string]any{}
	}
	fields["name"] = name
	_, b, err = k.call(ctx, http.MethodPost, "/"+kind+"s", k.admin, map[string]any{kind: fields})
	if err != nil {
		return "", err
	}
	var one map[string]struct{ ID string }
	if err := json.Unmarshal(b, &one); err != nil {
		return "", fmt.Errorf("decode new %s: %w", kind, err)
	}
	return one[kind].ID, nil
}

// grant gives user the role in project (by ids), or on the system when project is "".
func (k *keystone) grant(ctx context.Context, user, project, role string) error {
	path := "/projects/" + project + "/users/" + user + "/roles/" + role
	if project == "" {
		path = "/system/users/" + user + "/roles/" + role
	}
	_, _, err := k.call(ctx, http.MethodPut, path, k.admin, nil)
	return err
}
