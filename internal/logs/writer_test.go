package logs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readAll returns every message Read gives for cfg.
func readAll(t *testing.T, path string, cfg ReadConfig) []*Message {
	t.Helper()
	var out []*Message
	err := Read(context.Background(), path, cfg, func(m *Message) error {
		out = append(out, m)
		return nil
	})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return out
}

func lines(ms []*Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Line))
	}
	return out
}

func openTest(t *testing.T, cfg Config) (*Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := OpenWriter(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, path
}

var dockerLine = regexp.MustCompile(`^\{"log":"(?:[^"\\]|\\.)*","stream":"(stdout|stderr)","time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"\}$`)

func TestLineWriterDockerFormat(t *testing.T) {
	w, path := openTest(t, Config{})
	out, errw := w.Stream("stdout"), w.Stream("stderr")
	// Lines arrive cut at arbitrary places, as reads from a pipe do.
	for _, chunk := range []string{"hel", "lo\nwor", "ld\n", "\n"} {
		if _, err := out.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	errw.Write([]byte("oops\n"))
	out.Write([]byte("no newline"))
	if err := out.Flush(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		if !dockerLine.MatchString(sc.Text()) {
			t.Errorf("line %d is not docker's json-file format: %s", n, sc.Text())
		}
		n++
	}
	if n != 5 {
		t.Errorf("%d lines in the file, want 5:\n%s", n, data)
	}
	ms := readAll(t, path, ReadConfig{Tail: -1})
	want := []string{"hello\n", "world\n", "\n", "oops\n", "no newline"}
	if got := lines(ms); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("messages %q, want %q", got, want)
	}
	if ms[3].Stream != "stderr" || ms[0].Stream != "stdout" {
		t.Errorf("streams: %s %s", ms[0].Stream, ms[3].Stream)
	}
	if ms[4].Partial != true || ms[0].Partial {
		t.Errorf("partial flags: %v %v", ms[0].Partial, ms[4].Partial)
	}
}

func TestLineWriterSplitsLongLines(t *testing.T) {
	w, path := openTest(t, Config{})
	lw := w.Stream("stdout")
	calls := 0
	lw.now = func() time.Time {
		calls++
		return time.Unix(int64(1000+calls), 0)
	}
	long := strings.Repeat("a", MaxLine) + strings.Repeat("b", MaxLine) + "ccc\n"
	// Fed in small writes: the pieces are still MaxLine long.
	for i := 0; i < len(long); i += 1000 {
		lw.Write([]byte(long[i:min(i+1000, len(long))]))
	}
	lw.Write([]byte("short\n"))
	ms := readAll(t, path, ReadConfig{Tail: -1})
	if len(ms) != 4 {
		t.Fatalf("%d messages, want 4", len(ms))
	}
	if len(ms[0].Line) != MaxLine || !ms[0].Partial || len(ms[1].Line) != MaxLine || !ms[1].Partial {
		t.Errorf("pieces: %d partial=%v, %d partial=%v", len(ms[0].Line), ms[0].Partial, len(ms[1].Line), ms[1].Partial)
	}
	if string(ms[2].Line) != "ccc\n" || ms[2].Partial {
		t.Errorf("last piece %q partial=%v", ms[2].Line, ms[2].Partial)
	}
	if got := string(ms[0].Line) + string(ms[1].Line) + string(ms[2].Line); got != long {
		t.Error("pieces do not reassemble into the line")
	}
	// All pieces carry the time the line started; the next line its own.
	if !ms[0].Time.Equal(ms[1].Time) || !ms[1].Time.Equal(ms[2].Time) || !ms[3].Time.After(ms[2].Time) {
		t.Errorf("times %v %v %v %v", ms[0].Time, ms[1].Time, ms[2].Time, ms[3].Time)
	}
}

func writeN(t *testing.T, w *Writer, from, n int) {
	t.Helper()
	lw := w.Stream("stdout")
	for i := from; i < from+n; i++ {
		if _, err := lw.Write([]byte(fmt.Sprintf("line %04d\n", i))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRotationKeepsMaxFiles(t *testing.T) {
	w, path := openTest(t, Config{MaxSize: 1000, MaxFiles: 3})
	writeN(t, w, 0, 200)
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("rotated file missing: %v", err)
		}
		if st.Size() > 1000 {
			t.Errorf("%s is %d bytes, past max-size 1000", p, st.Size())
		}
		if st.Mode().Perm() != 0o640 {
			t.Errorf("%s mode %v, want 0640", p, st.Mode().Perm())
		}
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("%s.3 exists (max-file 3): %v", path, err)
	}
	// What is kept is the newest lines, contiguous and in order.
	ms := readAll(t, path, ReadConfig{Tail: -1})
	if len(ms) < 20 {
		t.Fatalf("only %d messages kept", len(ms))
	}
	first, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(string(ms[0].Line), "line ")))
	for i, m := range ms {
		if want := fmt.Sprintf("line %04d\n", first+i); string(m.Line) != want {
			t.Fatalf("message %d is %q, want %q", i, m.Line, want)
		}
	}
	if first+len(ms) != 200 {
		t.Errorf("last kept line is %d, want 199", first+len(ms)-1)
	}
}

func TestRotationMaxFilesOneReplaces(t *testing.T) {
	w, path := openTest(t, Config{MaxSize: 500, MaxFiles: 1})
	writeN(t, w, 0, 50)
	if _, err := os.Stat(path + ".1"); !os.IsNotExist(err) {
		t.Errorf("max-file 1 left %s.1: %v", path, err)
	}
	ms := readAll(t, path, ReadConfig{Tail: -1})
	if len(ms) == 0 || string(ms[len(ms)-1].Line) != "line 0049\n" {
		t.Errorf("after truncation: %q", lines(ms))
	}
}

func TestWriterReopensAndAppends(t *testing.T) {
	w, path := openTest(t, Config{})
	writeN(t, w, 0, 2)
	w.Close()
	if err := w.WriteMessage(&Message{Stream: "stdout", Line: []byte("x\n"), Time: time.Now()}); err == nil {
		t.Error("write after Close succeeded")
	}
	w2, err := OpenWriter(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	writeN(t, w2, 2, 1)
	if got := lines(readAll(t, path, ReadConfig{Tail: -1})); len(got) != 3 || got[2] != "line 0002\n" {
		t.Errorf("after reopen: %q", got)
	}
	if _, err := OpenWriter(filepath.Dir(path), Config{}); err == nil {
		t.Error("OpenWriter on a directory succeeded")
	}
}
