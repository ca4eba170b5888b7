package logs

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The hand-written encoder must write what encoding/json writes for a Go
// string, which is what docker's log lines hold.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	cases := []string{
		"", "hello\n", "tab\there", "quote \" and backslash \\",
		"<html> & </html>", "\x00\x01\x07\x08\x0b\x0c\x1f\x7f",
		"caf\u00e9 \u65e5\u672c", "line sep \u2028 para sep \u2029",
		"bad utf8 \xff\xfe end", "truncated \xe6\x97", "\r\n",
		"emoji \U0001F600", strings.Repeat("x", 1000),
	}
	for _, c := range cases {
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, []byte(c)); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", c, got, want)
		}
	}
}

func TestEntryFormat(t *testing.T) {
	ts := time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.FixedZone("x", 3600))
	got := string(appendEntry(nil, &Message{Stream: "stdout", Line: []byte("hello <b>\n"), Time: ts}))
	want := `{"log":"hello \u003cb\u003e\n","stream":"stdout","time":"2024-05-01T11:00:00.123456Z"}` + "\n"
	if got != want {
		t.Errorf("entry:\n got %s\nwant %s", got, want)
	}
	m, err := parseEntry([]byte(strings.TrimSuffix(got, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if m.Stream != "stdout" || string(m.Line) != "hello <b>\n" || !m.Time.Equal(ts) || m.Partial {
		t.Errorf("parsed back %+v", m)
	}
	for _, bad := range []string{`{"log":"x"`, `[]`, `{}`, `not json`} {
		if _, err := parseEntry([]byte(bad)); err == nil {
			t.Errorf("parseEntry(%s): no error", bad)
		}
	}
}
