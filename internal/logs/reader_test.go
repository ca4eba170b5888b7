package logs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReadTailAcrossRotatedFiles(t *testing.T) {
	w, path := openTest(t, Config{MaxSize: 1000, MaxFiles: 5})
	writeN(t, w, 0, 120)
	if _, err := os.Stat(path + ".2"); err != nil {
		t.Fatalf("test needs at least two rotations: %v", err)
	}
	all := lines(readAll(t, path, ReadConfig{Tail: -1}))
	for _, n := range []int{0, 1, 5, 30, 70, len(all), len(all) + 10} {
		got := lines(readAll(t, path, ReadConfig{Tail: n}))
		want := all[max(0, len(all)-n):]
		if strings.Join(got, "") != strings.Join(want, "") {
			t.Errorf("tail %d: got %d lines starting %q, want %d starting %q", n, len(got), first(got), len(want), first(want))
		}
	}
	// A line being written (no newline yet) is neither counted nor shown.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"log":"half`)
	f.Close()
	if got := lines(readAll(t, path, ReadConfig{Tail: 2})); strings.Join(got, "") != "line 0118\nline 0119\n" {
		t.Errorf("tail 2 with a half-written line: %q", got)
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func TestReadSinceUntil(t *testing.T) {
	w, path := openTest(t, Config{MaxSize: 400, MaxFiles: 10})
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 20; i++ {
		m := &Message{Stream: "stdout", Line: []byte(fmt.Sprintf("m%02d\n", i)), Time: base.Add(time.Duration(i) * time.Second)}
		if err := w.WriteMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	got := lines(readAll(t, path, ReadConfig{Tail: -1, Since: base.Add(5 * time.Second), Until: base.Add(8 * time.Second)}))
	if strings.Join(got, "") != "m05\nm06\nm07\nm08\n" {
		t.Errorf("since 5s until 8s: %q", got)
	}
	// Tail first, then since: the last 3 of which only those after 18s.
	got = lines(readAll(t, path, ReadConfig{Tail: 3, Since: base.Add(18 * time.Second)}))
	if strings.Join(got, "") != "m18\nm19\n" {
		t.Errorf("tail 3 since 18s: %q", got)
	}
	// Until also ends a follow.
	done := make(chan error, 1)
	go func() {
		done <- Read(context.Background(), path, ReadConfig{Tail: -1, Until: base.Add(time.Second), Follow: true}, func(*Message) error { return nil })
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("follow with until: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not stop at until")
	}
}

func TestReadSkipsDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	good := string(appendEntry(nil, &Message{Stream: "stdout", Line: []byte("ok\n"), Time: time.Unix(1, 0)}))
	content := good + "garbage\n" + `{"log":"cut sho` + "\n" + strings.Repeat("z", 2*maxEntry) + "\n" + good
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := lines(readAll(t, path, ReadConfig{Tail: -1})); len(got) != 2 || got[0] != "ok\n" || got[1] != "ok\n" {
		t.Errorf("read %q, want the two good lines", got)
	}
	// fn's error ends the read and is returned.
	stop := errors.New("stop")
	if err := Read(context.Background(), path, ReadConfig{Tail: -1}, func(*Message) error { return stop }); err != stop {
		t.Errorf("Read returned %v, want fn's error", err)
	}
	// A log that does not exist is empty.
	if got := readAll(t, path+".missing", ReadConfig{Tail: -1}); len(got) != 0 {
		t.Errorf("missing log: %d messages", len(got))
	}
}

// follower runs a following Read and collects what it gets.
type follower struct {
	mu   sync.Mutex
	got  []string
	stop chan struct{}
	done chan error
}

func startFollow(path string, cfg ReadConfig, ctx context.Context) *follower {
	f := &follower{stop: make(chan struct{}), done: make(chan error, 1)}
	cfg.Follow = true
	cfg.Stop = f.stop
	go func() {
		f.done <- Read(ctx, path, cfg, func(m *Message) error {
			f.mu.Lock()
			f.got = append(f.got, string(m.Line))
			f.mu.Unlock()
			return nil
		})
	}()
	return f
}

func (f *follower) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

func (f *follower) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.count() < n {
		select {
		case err := <-f.done:
			t.Fatalf("follow ended early with %d messages, want %d: %v", f.count(), n, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower has %d messages after 5s, want %d", f.count(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *follower) finish(t *testing.T) []string {
	t.Helper()
	close(f.stop)
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("follow: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end after Stop")
	}
	return f.got
}

func TestFollowAcrossRotations(t *testing.T) {
	w, path := openTest(t, Config{MaxSize: 2000, MaxFiles: 50})
	writeN(t, w, 0, 10)
	f := startFollow(path, ReadConfig{Tail: 3}, context.Background())
	f.waitFor(t, 3)
	// Bursts of lines, each rotating the file several times before the
	// follower can look: it must walk the rotated files in between.
	next := 10
	for burst := 0; burst < 5; burst++ {
		writeN(t, w, next, 300)
		next += 300
		time.Sleep(20 * time.Millisecond)
	}
	f.waitFor(t, 3+next-10)
	got := f.finish(t)
	if len(got) != 3+next-10 {
		t.Fatalf("followed %d messages, want %d", len(got), 3+next-10)
	}
	for i, l := range got {
		if want := fmt.Sprintf("line %04d\n", 7+i); l != want {
			t.Fatalf("message %d is %q, want %q (lost or duplicated across a rotation)", i, l, want)
		}
	}
}

func TestFollowWaitsForTheFileAndStopDrains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "late.log")
	f := startFollow(path, ReadConfig{Tail: -1}, context.Background())
	time.Sleep(50 * time.Millisecond)
	w, err := OpenWriter(path, Config{MaxSize: 300, MaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	writeN(t, w, 0, 3)
	f.waitFor(t, 3)
	// Lines written just before Stop are still delivered.
	writeN(t, w, 3, 2)
	got := f.finish(t)
	if strings.Join(got, "") != "line 0000\nline 0001\nline 0002\nline 0003\nline 0004\n" {
		t.Errorf("followed %q", got)
	}
}

func TestFollowMaxFilesOne(t *testing.T) {
	w, path := openTest(t, Config{MaxSize: 300, MaxFiles: 1})
	writeN(t, w, 0, 3) // about 210 bytes: no truncation yet
	f := startFollow(path, ReadConfig{Tail: -1}, context.Background())
	f.waitFor(t, 3)
	writeN(t, w, 3, 22)
	f.waitFor(t, 4)
	time.Sleep(200 * time.Millisecond)
	got := f.finish(t)
	if got[len(got)-1] != "line 0024\n" {
		t.Errorf("last followed line %q, want line 0024", got[len(got)-1])
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("out of order or repeated: %q then %q", got[i-1], got[i])
		}
	}
}

func TestFollowEndsWithContext(t *testing.T) {
	_, path := openTest(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	f := startFollow(path, ReadConfig{Tail: -1}, ctx)
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-f.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("follow ended with %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end with its context")
	}
}
