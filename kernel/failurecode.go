package kernel

import "errors"

// FailureCoder is an error that names a provider's own failure code within
// its kind (e.g. "rate_limit", "auth", "bad_request", "upstream_timeout"
// of an LLM endpoint). The code crosses the plugin boundary with the
// invocation error and shows in the invocation_fail record.
type FailureCoder interface {
	FailureCode() string
}

// FailureCode is the first failure code in err's chain, "" if none.
func FailureCode(err error) string {
	for err != nil {
		if c, ok := err.(FailureCoder); ok && c.FailureCode() != "" {
			return c.FailureCode()
		}
		err = errors.Unwrap(err)
	}
	return ""
}
