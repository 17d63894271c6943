package ironwork

import (
	"errors"
	"fmt"
)

// Code classifies an error so that transports can map it to a status once, in one place.
type Code string

// Error codes. The HTTP API maps each to one status code; anything without a code is internal.
const (
	EINVALID       Code = "invalid"        // the request is malformed or not allowed in this state
	ENOTFOUND      Code = "not_found"      // the object does not exist
	ECONFLICT      Code = "conflict"       // a duplicate, or the object is in use
	ELOCKED        Code = "locked"         // the node is reserved by a conductor
	ENOTACCEPTABLE Code = "not_acceptable" // the requested API version is not served
	EUNAUTHORIZED  Code = "unauthorized"   // credentials are missing or wrong
	EFORBIDDEN     Code = "forbidden"      // the caller may not do this
	ETOOLARGE      Code = "too_large"      // the request body is over the limit
	EUNAVAILABLE   Code = "unavailable"    // no worker or conductor can take the work now
	EINTERNAL      Code = "internal"       // a bug or an unexpected failure
)

// Error is an error with a Code and a message meant for the API user.
type Error struct {
	Code    Code
	Message string
	Err     error // the cause, if any; never shown to API users
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any other
// non-nil error and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of the first *Error in err's chain, or a generic
// message for internal errors so that their details never reach API users.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "An internal error occurred."
}
