package audit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// A cursor is base64url (no padding) of
//
//	version (1 byte, 1) | position: the raw 12-byte ID to continue before |
//	the first 8 bytes of SHA-256 over the version, the position and the filter
//
// The checksum makes an altered, truncated or spliced cursor, or one reused
// with another filter, fail to decode instead of silently paging somewhere
// unexpected. It is not a signature and needs none: a cursor grants nothing,
// since every page re-applies the filter, and the server sets the tenant in
// the filter from the caller's credential, never from the cursor.
const (
	cursorVersion = 1
	cursorLen     = 1 + 12 + 8
)

var cursorEncoding = base64.RawURLEncoding.Strict()

var errCursor = errors.New("malformed or altered cursor, or one issued for another filter")

// encodeCursor returns the cursor that continues f before the ID id.
func encodeCursor(f Filter, id string) (string, error) {
	raw, ok := decodeID(id)
	if !ok {
		// Stores return IDs they accepted, so this is a backend bug.
		return "", fmt.Errorf("audit store returned a malformed position %q", id)
	}
	b := make([]byte, 0, cursorLen)
	b = append(b, cursorVersion)
	b = append(b, raw[:]...)
	b = append(b, cursorSum(f, b)...)
	return cursorEncoding.EncodeToString(b), nil
}

// decodeCursor returns the ID a cursor for f continues before.
func decodeCursor(f Filter, cursor string) (string, error) {
	if cursorEncoding.DecodedLen(len(cursor)) != cursorLen {
		return "", errCursor
	}
	b, err := cursorEncoding.DecodeString(cursor)
	if err != nil || len(b) != cursorLen || b[0] != cursorVersion {
		return "", errCursor
	}
	if string(cursorSum(f, b[:13])) != string(b[13:]) {
		return "", errCursor
	}
	id := hex.EncodeToString(b[1:13])
	if _, _, err := ParseID(id); err != nil {
		return "", errCursor
	}
	return id, nil
}

// cursorSum binds a cursor's head (version and position) to a filter.
func cursorSum(f Filter, head []byte) []byte {
	h := sha256.New()
	h.Write(head)
	for _, s := range []string{f.Tenant, f.Project, f.Actor, f.Action, f.Outcome} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	for _, t := range []struct {
		set bool
		ns  int64
	}{{!f.Since.IsZero(), unixNano(f.Since)}, {!f.Until.IsZero(), unixNano(f.Until)}} {
		var b [9]byte
		if t.set {
			b[0] = 1
			binary.BigEndian.PutUint64(b[1:], uint64(t.ns))
		}
		h.Write(b[:])
	}
	return h.Sum(nil)[:8]
}
