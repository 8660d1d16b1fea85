package audit

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// IDLen is the length of an ID: 12 bytes in hex.
const IDLen = 24

var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// MakeID returns the ID of instant t with sequence number seq. Instants
// before 1970 or after 2262, which an ID cannot hold, are clamped to its
// range, so MakeID also turns any time bound into a key bound: every ID of an
// instant at or after t sorts at or after MakeID(t, 0), and every ID of an
// instant at or before t at or before MakeID(t, math.MaxUint32).
func MakeID(t time.Time, seq uint32) string {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(unixNano(t)))
	binary.BigEndian.PutUint32(b[8:], seq)
	return hex.EncodeToString(b[:])
}

// unixNano is t in Unix nanoseconds, clamped to [0, MaxInt64].
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return 0
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var errMalformedID = errors.New("malformed audit id")

// ParseID checks that id is well-formed (IDLen lower-case hex digits, an
// instant from 1970 to 2262) and returns its instant, in UTC, and sequence
// number.
func ParseID(id string) (time.Time, uint32, error) {
	b, ok := decodeID(id)
	if !ok {
		return time.Time{}, 0, errMalformedID
	}
	n := binary.BigEndian.Uint64(b[:8])
	return time.Unix(0, int64(n)).UTC(), binary.BigEndian.Uint32(b[8:]), nil
}

func decodeID(id string) ([12]byte, bool) {
	var b [12]byte
	if len(id) != IDLen {
		return b, false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return b, false // upper case too: an ID has one spelling
		}
	}
	if _, err := hex.Decode(b[:], []byte(id)); err != nil || b[0] >= 0x80 {
		return b, false // the instant is a non-negative int64
	}
	return b, true
}

// idGen issues strictly increasing IDs. Its zero value is ready to use.
type idGen struct {
	mu    sync.Mutex
	last  int64 // instant of the last ID, Unix nanoseconds
	seq   uint32
	start func() uint32 // first sequence number of a new instant; nil: random
}

// next returns a new ID for the instant now and the instant it encodes,
// which is now unless the clock has not moved past the last ID's instant.
func (g *idGen) next(now time.Time) (string, time.Time) {
	n := unixNano(now)
	g.mu.Lock()
	switch {
	case n > g.last:
		g.last, g.seq = n, g.first()
	case g.seq < math.MaxUint32:
		// Same nanosecond, or the clock stepped back: stay on the last
		// instant.
		g.seq++
	case g.last < math.MaxInt64:
		g.last, g.seq = g.last+1, g.first()
	default:
		// The end of time (2262): nothing later to move to. Unreachable
		// with a real clock; keep the IDs unique by wrapping the sequence,
		// which the store would refuse as duplicates long before.
		g.seq = 0
	}
	last, seq := g.last, g.seq
	g.mu.Unlock()
	at := time.Unix(0, last).UTC()
	return MakeID(at, seq), at
}

// first returns the first sequence number of a new instant: random below
// 2³¹, leaving 2³¹ more in the same nanosecond, so independent generators
// (replicas) are unlikely to collide.
func (g *idGen) first() uint32 {
	if g.start != nil {
		return g.start()
	}
	return rand.Uint32() >> 1
}
