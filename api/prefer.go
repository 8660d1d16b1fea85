package api

import (
	"strconv"
	"strings"
	"time"
)

// preferWait returns the wait a Prefer header (RFC 7240) asks for, capped at
// limit; zero when the header asks for none or is malformed (a preference
// that cannot be honoured is ignored, as the RFC says).
func preferWait(header *string, limit time.Duration) time.Duration {
	if header == nil || limit <= 0 {
		return 0
	}
	for _, pref := range strings.Split(*header, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(pref), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "wait") {
			continue
		}
		value = strings.Trim(strings.TrimSpace(value), `"`)
		if i := strings.IndexByte(value, ';'); i >= 0 {
			value = value[:i]
		}
		n, err := strconv.ParseUint(value, 10, 32)
		if err != nil || n == 0 {
			return 0
		}
		return min(time.Duration(n)*time.Second, limit)
	}
	return 0
}
