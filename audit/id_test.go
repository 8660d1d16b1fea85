package audit

import (
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

var t0 = time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)

func TestIDsInOneNanosecondSortAndAreUnique(t *testing.T) {
	var g idGen
	prev := ""
	for i := range 100_000 {
		id, at := g.next(t0)
		if id <= prev {
			t.Fatalf("ID %d %s does not sort after %s", i, id, prev)
		}
		if !at.Equal(t0) {
			t.Fatalf("ID %d at %v, want %v", i, at, t0)
		}
		if got, _, err := ParseID(id); err != nil || !got.Equal(at) {
			t.Fatalf("ParseID(%s) = %v, %v; want %v", id, got, err, at)
		}
		prev = id
	}
}

// The clock is walked through a table: each step's time, and the instant
// and sequence the ID must carry. Sequences start at 10 here.
func TestIDTimeline(t *testing.T) {
	g := idGen{start: func() uint32 { return 10 }}
	ns := func(n int64) time.Time { return t0.Add(time.Duration(n)) }
	steps := []struct {
		now    time.Time
		wantAt time.Time
		seq    uint32
	}{
		{ns(0), ns(0), 10},
		{ns(0), ns(0), 11},     // same nanosecond
		{ns(1), ns(1), 10},     // next nanosecond restarts the sequence
		{ns(-1000), ns(1), 11}, // the clock steps back: hold the last instant
		{ns(0), ns(1), 12},
		{ns(2), ns(2), 10}, // caught up
		{ns(5_000_000_000), ns(5_000_000_000), 10},
	}
	prev := ""
	for i, s := range steps {
		id, at := g.next(s.now)
		gotAt, seq, err := ParseID(id)
		if err != nil || !at.Equal(s.wantAt) || !gotAt.Equal(s.wantAt) || seq != s.seq || id <= prev {
			t.Errorf("step %d (now %v): id %s at %v (parsed %v seq %d, %v); want at %v seq %d, after %s",
				i, s.now, id, at, gotAt, seq, err, s.wantAt, s.seq, prev)
		}
		prev = id
	}
}

func TestIDSequenceOverflowMovesToNextNanosecond(t *testing.T) {
	g := idGen{start: func() uint32 { return math.MaxUint32 - 1 }}
	var ids []string
	var ats []time.Time
	for range 4 {
		id, at := g.next(t0)
		ids, ats = append(ids, id), append(ats, at)
	}
	if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != 4 {
		t.Fatalf("IDs not strictly increasing: %v", ids)
	}
	want := []time.Time{t0, t0, t0.Add(1), t0.Add(1)}
	for i := range ats {
		if !ats[i].Equal(want[i]) {
			t.Errorf("ID %d at %v, want %v", i, ats[i], want[i])
		}
	}
}

func TestMakeIDSortsLikeTime(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	type pair struct {
		at  time.Time
		seq uint32
	}
	var ps []pair
	for range 5000 {
		ps = append(ps, pair{time.Unix(0, r.Int64N(math.MaxInt64)), r.Uint32()})
	}
	ps = append(ps, pair{time.Unix(0, 0), 0}, pair{time.Unix(0, math.MaxInt64), math.MaxUint32}, pair{t0, 1}, pair{t0.Add(1), 0})
	for _, p := range ps {
		got, seq, err := ParseID(MakeID(p.at, p.seq))
		if err != nil || !got.Equal(p.at) || seq != p.seq {
			t.Fatalf("ParseID(MakeID(%v, %d)) = %v, %d, %v", p.at, p.seq, got, seq, err)
		}
	}
	slices.SortFunc(ps, func(a, b pair) int { return strings.Compare(MakeID(a.at, a.seq), MakeID(b.at, b.seq)) })
	for i := 1; i < len(ps); i++ {
		a, b := ps[i-1], ps[i]
		if a.at.After(b.at) || (a.at.Equal(b.at) && a.seq > b.seq) {
			t.Fatalf("IDs sort %v/%d before %v/%d", a.at, a.seq, b.at, b.seq)
		}
	}
}

func TestMakeIDClampsOutOfRange(t *testing.T) {
	if got, want := MakeID(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), 0), MakeID(time.Unix(0, 0), 0); got != want {
		t.Errorf("before 1970: %s, want %s", got, want)
	}
	if got, want := MakeID(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), 0), MakeID(time.Unix(0, math.MaxInt64), 0); got != want {
		t.Errorf("after 2262: %s, want %s", got, want)
	}
	if got := MakeID(time.Time{}, 0); got != strings.Repeat("0", IDLen) {
		t.Errorf("zero time: %s", got)
	}
}

func TestParseIDRejects(t *testing.T) {
	good := MakeID(t0, 7)
	for _, id := range []string{
		"", good[1:], good + "0", strings.ToUpper(MakeID(t0, 0xabcdef)), "g" + good[1:],
		"8" + good[1:], // negative instant
		" " + good[1:], strings.Repeat("z", IDLen),
	} {
		if _, _, err := ParseID(id); err == nil {
			t.Errorf("ParseID(%q) succeeded", id)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	filter := Filter{Tenant: "SHIP", Since: t0}
	good, err := encodeCursor(filter, MakeID(t0.Add(time.Hour), 3))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		good, good[:len(good)-1], good + "A", "", "x", "AA", "====",
		strings.Repeat("A", len(good)), strings.Repeat("_", len(good)), "AQAAAAAAAAAAAAAAAAAAAAAAAAAA",
	} {
		f.Add(seed, "SHIP")
	}
	f.Add(good, "PORT")
	f.Fuzz(func(t *testing.T, cursor, tenant string) {
		fl := filter
		fl.Tenant = tenant
		id, err := decodeCursor(fl, cursor)
		if err != nil {
			if id != "" {
				t.Fatalf("failed decode returned id %q", id)
			}
			return
		}
		// Whatever decodes is a well-formed position, and the cursor is the
		// one encoding of it for the filter: nothing else decodes.
		if _, _, err := ParseID(id); err != nil {
			t.Fatalf("decoded malformed id %q: %v", id, err)
		}
		again, err := encodeCursor(fl, id)
		if err != nil || again != cursor {
			t.Fatalf("cursor %q decodes to %s, which encodes to %q, %v", cursor, id, again, err)
		}
	})
}

func FuzzSanitize(f *testing.F) {
	for _, seed := range []string{
		"", "plain", " x\n", "\xff", "\u202e", "gk_0123abcd_" + strings.Repeat("x", 43),
		"eyJa.eyJb.c", "Bearer abc123", "basic=x1", strings.Repeat("é", 300),
		"gk_a_gk_b_" + strings.Repeat("Z", 40), "eyJeyJ.eyJ..x", "Bearer Bearer 1",
	} {
		f.Add(seed)
	}
	secret := []*regexp.Regexp{apiKeyRE, jwtRE, authRE}
	f.Fuzz(func(t *testing.T, s string) {
		out := Sanitize(s)
		if Sanitize(out) != out {
			t.Fatalf("Sanitize(%q) = %q, but Sanitize of that is %q", s, out, Sanitize(out))
		}
		if !utf8.ValidString(out) || utf8.RuneCountInString(out) > MaxFieldLen || out != strings.TrimSpace(out) {
			t.Fatalf("Sanitize(%q) = %q: invalid, too long or padded", s, out)
		}
		for _, r := range out {
			if !unicode.IsPrint(r) {
				t.Fatalf("Sanitize(%q) = %q holds %U", s, out, r)
			}
		}
		for _, re := range secret {
			if re.MatchString(out) {
				t.Fatalf("Sanitize(%q) = %q still matches %v", s, out, re)
			}
		}
	})
}
