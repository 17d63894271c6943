package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/ironwork/ironwork"
)

// statusOf maps an error code to its HTTP status: the one place where that happens.
func statusOf(code ironwork.Code) int {
	switch code {
	case ironwork.EINVALID:
		return http.StatusBadRequest
	case ironwork.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case ironwork.EFORBIDDEN:
		return http.StatusForbidden
	case ironwork.ENOTFOUND:
		return http.StatusNotFound
	case ironwork.ENOTACCEPTABLE:
		return http.StatusNotAcceptable
	case ironwork.ECONFLICT, ironwork.ELOCKED:
		return http.StatusConflict
	case ironwork.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case ironwork.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errMethodNotAllowed is a sentinel for a known path used with the wrong method.
var errMethodNotAllowed = errors.New("method not allowed")

// methodRefused is a 405 with Ironic's own message for it (it is errMethodNotAllowed).
type methodRefused struct{ msg string }

func (e methodRefused) Error() string        { return e.msg }
func (e methodRefused) Is(target error) bool { return target == errMethodNotAllowed }

// writeError sends err in Ironic's error format: a JSON object whose "error_message" is a JSON
// document, encoded as a string, with faultcode, faultstring and debuginfo. Internal errors are
// logged once here and their details withheld from the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(ironwork.ErrorCode(err))
	msg := ironwork.ErrorMessage(err)
	if errors.Is(err, errMethodNotAllowed) {
		status, msg = http.StatusMethodNotAllowed, "The method specified is not allowed for this resource."
		if m := (methodRefused{}); errors.As(err, &m) {
			msg = m.msg
		}
	}
	if status >= 500 {
		s.logFor(r).ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	body := errorBody(status, msg)
	if status == http.StatusUnauthorized {
		challenge := `Basic realm="Baremetal API"`
		if c, ok := s.opts.Auth.(interface{ Challenge() string }); ok {
			challenge = c.Challenge()
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// errorBody is Ironic's error body for status with message msg.
func errorBody(status int, msg string) []byte {
	fault := "Client"
	if status >= 500 {
		fault = "Server"
	}
	inner, _ := json.Marshal(struct {
		FaultCode   string  `json:"faultcode"`
		FaultString string  `json:"faultstring"`
		DebugInfo   *string `json:"debuginfo"`
	}{fault, msg, nil})
	body, _ := json.Marshal(map[string]string{"error_message": string(inner)})
	return body
}

func invalid(format string, args ...any) error {
	return ironwork.Errorf(ironwork.EINVALID, format, args...)
}

func notAcceptable(format string, args ...any) error {
	return ironwork.Errorf(ironwork.ENOTACCEPTABLE, format, args...)
}

// tooNew is the error for a field, filter or parameter newer than the requested version.
func tooNew(since int) error {
	return notAcceptable("Request not acceptable. The minimal required API version should be 1.%d", since)
}
