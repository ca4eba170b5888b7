package format

import (
	"strings"
	"time"
	"unicode/utf8"

	units "github.com/docker/go-units"
)

// Size is a size as docker's listings print it: "4.26MB" (decimal units,
// three significant digits).
func Size(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}

// TotalSize is a size as docker's summaries print it ("Total reclaimed
// space", system df): four significant digits.
func TotalSize(n int64) string {
	return units.HumanSize(float64(n))
}

// Since is a past time as docker's CREATED columns print it: "2 days ago",
// "About a minute ago", "Less than a second ago".
func Since(t, now time.Time) string {
	return units.HumanDuration(now.UTC().Sub(t)) + " ago"
}

// ShortID drops the algorithm and keeps 12 hex digits, as docker's
// truncated IDs.
func ShortID(id string) string {
	if _, hex, ok := strings.Cut(id, ":"); ok {
		id = hex
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// Ellipsis shortens s to at most width characters, ending in "…" when it
// had to cut.
func Ellipsis(s string, width int) string {
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	if width <= 1 {
		return string([]rune(s)[:width])
	}
	return string([]rune(s)[:width-1]) + "…"
}
