package syncmsg

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, &Message{Type: TypeHooks}); err != nil {
		t.Fatal(err)
	}
	if err := Write(&buf, Errorf("mount", errors.New("boom"))); err != nil {
		t.Fatal(err)
	}
	if _, err := Expect(&buf, TypeHooks); err != nil {
		t.Fatal(err)
	}
	_, err := Expect(&buf, TypeReady)
	var ce *ChildError
	if !errors.As(err, &ce) || ce.Error() != "mount: boom" {
		t.Fatalf("error message: got %v", err)
	}
	if _, err := Read(&buf); err != io.EOF {
		t.Fatalf("after the last message: %v, want EOF", err)
	}
}

// The stage compares the runtime's hooks-done frame byte for byte.
func TestHooksDoneBytes(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, &Message{Type: TypeHooksDone}); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "\x00\x00\x00\x15{\"type\":\"hooks-done\"}"; got != want {
		t.Fatalf("hooks-done frame %q, want %q", got, want)
	}
}

func TestRejectsHugeAndTruncated(t *testing.T) {
	if _, err := Read(strings.NewReader("\xff\xff\xff\xff")); err == nil {
		t.Fatal("a 4 GiB length was accepted")
	}
	if _, err := Read(strings.NewReader("\x00\x00\x00\x10{}")); err == nil || err == io.EOF {
		t.Fatalf("truncated body: %v", err)
	}
	if _, err := Expect(strings.NewReader("\x00\x00\x00\x10{\"type\":\"ready\"}"), TypeHooks); err == nil {
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

// The stage (plan.c) checks the version it is named by this exact entry.
func TestVersionEnv(t *testing.T) {
	if got := VersionEnv(); got != "_BERTH_SYNC_VERSION=2" {
		t.Errorf("VersionEnv() = %q", got)
	}
}
