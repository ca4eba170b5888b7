package cgroups

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test binary doubles as the workload the root tests put in cgroups:
// with BERTH_CGROUPS_HELPER set, TestMain runs that helper instead of the
// tests. A helper first waits for a line on stdin, sent once the test has
// moved it into the cgroup, so that what it allocates is charged there.
const helperEnv = "BERTH_CGROUPS_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "hog":
		helperWait()
		hog()
	case "busy":
		helperWait()
		busy()
	default:
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

func helperWait() {
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(3)
	}
}

// sink keeps the helpers' memory reachable.
var sink [][]byte

// hog allocates and touches memory until 1 GiB, then says it survived.
func hog() {
	for range 1024 {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		sink = append(sink, b)
	}
	fmt.Println("survived")
	os.Exit(0)
}

// busy touches 16 MiB and burns CPU until killed.
func busy() {
	for range 16 {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		sink = append(sink, b)
	}
	fmt.Println("ready")
	x := 0
	for {
		x++
	}
}

// syncBuffer is a bytes.Buffer a test may read while a command writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startHelper starts a helper waiting for its go-ahead and returns it
// with a function that sends it, and its output.
func startHelper(t *testing.T, name string) (*proc, func(), *syncBuffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+name)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startCmd(t, cmd)
	return p, func() {
		if _, err := w.Write([]byte("go\n")); err != nil {
			t.Fatal(err)
		}
	}, out
}

// runIn runs a shell script inside m's cgroup and returns its output. The
// shell waits for a line before running the script, sent once it is in the
// cgroup.
func runIn(t *testing.T, m Manager, script string) string {
	t.Helper()
	cmd := exec.Command("sh", "-c", "read x; "+script)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startCmd(t, cmd)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("script %q still running after 20s; output so far:\n%s", script, out)
	}
	p.done <- nil // for the cleanup
	return strings.TrimSpace(out.String())
}
