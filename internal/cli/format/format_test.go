package format

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestHumanSizes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0B", 999: "999B", 1000: "1kB", 4261211: "4.26MB", 1234567890: "1.23GB", 77800000: "77.8MB",
	} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
	if got := TotalSize(4261211); got != "4.261MB" {
		t.Errorf("TotalSize = %q, want 4.261MB", got)
	}
}

func TestSince(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		500 * time.Millisecond:   "Less than a second ago",
		30 * time.Second:         "30 seconds ago",
		61 * time.Second:         "About a minute ago",
		5 * time.Minute:          "5 minutes ago",
		70 * time.Minute:         "About an hour ago",
		50 * time.Hour:           "2 days ago",
		15 * 24 * time.Hour:      "2 weeks ago",
		400 * 24 * time.Hour:     "13 months ago",
		3 * 365 * 24 * time.Hour: "3 years ago",
	} {
		if got := Since(now.Add(-d), now); got != want {
			t.Errorf("Since(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestShortIDAndEllipsis(t *testing.T) {
	if got := ShortID("sha256:0123456789abcdef0123"); got != "0123456789ab" {
		t.Errorf("ShortID = %q", got)
	}
	if got := ShortID("<missing>"); got != "<missing>" {
		t.Errorf("ShortID(<missing>) = %q", got)
	}
	if got := Ellipsis("/bin/sh -c #(nop) ADD file:abcdef in / ", 10); got != "/bin/sh -…" {
		t.Errorf("Ellipsis = %q", got)
	}
	if got := Ellipsis("short", 10); got != "short" {
		t.Errorf("Ellipsis = %q", got)
	}
}

func TestTableFormat(t *testing.T) {
	tmpl, table, err := Parse("", "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}")
	if err != nil || !table {
		t.Fatal(err, table)
	}
	var b bytes.Buffer
	err = Write(&b, tmpl, table, map[string]string{"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID"},
		[]map[string]any{
			{"Repository": "busybox", "Tag": "latest", "ID": "0123456789ab"},
			{"Repository": "127.0.0.1:5000/some/long/name", "Tag": "v1", "ID": "ba9876543210"},
		})
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"REPOSITORY                      TAG       IMAGE ID\n" +
		"busybox                         latest    0123456789ab\n" +
		"127.0.0.1:5000/some/long/name   v1        ba9876543210\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestJSONAndPlainFormats(t *testing.T) {
	rows := []map[string]any{{"Repository": "busybox", "Tag": "<none>", "ID": "x"}}
	tmpl, table, _ := Parse("json", "table {{.ID}}")
	var b bytes.Buffer
	if err := Write(&b, tmpl, table, nil, rows); err != nil {
		t.Fatal(err)
	}
	if b.String() != `{"ID":"x","Repository":"busybox","Tag":"<none>"}`+"\n" {
		t.Errorf("json: %q", b.String())
	}
	b.Reset()
	tmpl, table, _ = Parse("{{.Repository}}:{{.Tag | upper}} {{truncate .ID 0}}|{{pad .Repository 1 1}}|{{join (split .Repository \"b\") \"-\"}}", "")
	if err := Write(&b, tmpl, table, nil, rows); err != nil {
		t.Fatal(err)
	}
	if b.String() != "busybox:<NONE> | busybox |-usy-ox\n" {
		t.Errorf("plain: %q", b.String())
	}
	tmpl, _, _ = Parse("{{.Nope}}", "")
	if err := Write(&b, tmpl, false, nil, rows); err == nil {
		t.Error("a template naming a missing field did not fail")
	}
	if _, _, err := Parse("{{.Repository", ""); err == nil || !strings.Contains(err.Error(), "template parsing error") {
		t.Errorf("bad template: %v", err)
	}
}
