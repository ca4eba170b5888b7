package syncmsg

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	cfg := &Config{ID: "c1", Spec: &specs.Spec{Hostname: "h"}, Process: &specs.Process{Args: []string{"sh"}}}
	if err := Write(&buf, &Message{Type: TypeConfig, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	if err := Write(&buf, Errorf("mount", errors.New("boom"))); err != nil {
		t.Fatal(err)
	}
	m, err := Expect(&buf, TypeConfig)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.ID != "c1" || m.Config.Spec.Hostname != "h" || m.Config.Process.Args[0] != "sh" {
		t.Fatalf("config did not survive: %+v", m.Config)
	}
	_, err = Expect(&buf, TypeReady)
	var ce *ChildError
	if !errors.As(err, &ce) || ce.Error() != "mount: boom" {
		t.Fatalf("error message: got %v", err)
	}
	if _, err := Read(&buf); err != io.EOF {
		t.Fatalf("after the last message: %v, want EOF", err)
	}
}

func TestRejectsHugeAndTruncated(t *testing.T) {
	if _, err := Read(strings.NewReader("\xff\xff\xff\xff")); err == nil {
		t.Fatal("a 4 GiB length was accepted")
	}
	if _, err := Read(strings.NewReader("\x00\x00\x00\x10{}")); err == nil || err == io.EOF {
		t.Fatalf("truncated body: %v", err)
	}
	if _, err := Expect(strings.NewReader("\x00\x00\x00\x10{\"type\":\"ready\"}"), TypeConfig); err == nil {
		t.Fatal("wrong message type accepted")
	}
}

// The C constructor writes error frames by hand; they must decode.
func TestConstructorFrame(t *testing.T) {
	body := `{"type":"error","step":"join namespaces","message":"setns mnt: Operation not permitted"}`
	frame := []byte{0, 0, 0, byte(len(body))}
	_, err := Expect(bytes.NewReader(append(frame, body...)), TypeReady)
	if err == nil || !strings.Contains(err.Error(), "setns mnt") {
		t.Fatalf("got %v", err)
	}
}

func TestCheckVersion(t *testing.T) {
	if err := CheckVersion(Version); err != nil {
		t.Fatalf("own version refused: %v", err)
	}
	for _, v := range []string{"", "0", Version + "0"} {
		if err := CheckVersion(v); err == nil {
			t.Errorf("version %q accepted", v)
		}
	}
	if got := VersionEnv(); got != VersionVar+"="+Version {
		t.Errorf("VersionEnv() = %q", got)
	}
}

// A message without a config is written as the same JSON as before the
// encoding skipped the config's types: readers cannot tell.
func TestWriteBare(t *testing.T) {
	for _, m := range []*Message{{Type: TypeReady}, {Type: TypeError, Step: "mount", Message: "boom"}} {
		var buf bytes.Buffer
		if err := Write(&buf, m); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(m)
		if got := buf.Bytes()[4:]; !bytes.Equal(got, want) {
			t.Errorf("wrote %s, want %s", got, want)
		}
		back, err := Read(&buf)
		if err != nil || *back != *m {
			t.Errorf("read back %+v, %v; want %+v", back, err, m)
		}
	}
}
