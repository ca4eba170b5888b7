package vm

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeQemuEnv makes the test binary act as qemu (see TestMain), in the mode
// the variable names:
//
//	run      the guest runs job.sh (with the host's sh) and records its status
//	hang     the guest never gets to the job
//	crash    the guest panics: qemu exits without a status
//	nostatus the job prints but the guest records no status
const fakeQemuEnv = "BERTH_VM_FAKE_QEMU"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeQemuEnv); mode != "" {
		os.Exit(fakeQemu(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeQemu plays qemu and the guest for Machine.Run, from the arguments
// qemuConfig.args builds.
func fakeQemu(mode string, args []string) int {
	var console, sock, jobDir string
	for i := 0; i+1 < len(args); i++ {
		v := args[i+1]
		switch {
		case args[i] == "-chardev" && strings.HasPrefix(v, "file,id=console,"):
			console = strings.TrimPrefix(v, "file,id=console,path=")
		case args[i] == "-chardev" && strings.HasPrefix(v, "socket,id=output,"):
			sock = strings.TrimPrefix(v, "socket,id=output,path=")
		case args[i] == "-fsdev" && strings.Contains(v, "id=share0,") && jobDir == "":
			_, jobDir, _ = strings.Cut(v, "path=")
		}
	}
	say := func(s string) { os.WriteFile(console, []byte(s+"\r\n"), 0o644) }
	switch mode {
	case "hang":
		say("fake console: booting")
		time.Sleep(time.Hour)
		return 0
	case "crash":
		say("fake console: Kernel panic - not syncing")
		return 0
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return 1
	}
	defer conn.Close()
	say("fake console: running the job")
	if mode == "nostatus" {
		conn.Write([]byte("berth-vm: kernel fake\n"))
		return 0
	}
	cmd := exec.Command("sh", filepath.Join(jobDir, jobScript))
	cmd.Stdout, cmd.Stderr = conn, conn
	code := 0
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			return 1
		}
		code = ee.ExitCode()
	}
	os.WriteFile(filepath.Join(jobDir, statusFile), []byte(strconv.Itoa(code)+"\n"), 0o644)
	return 0
}

func fakeMachine(t *testing.T, mode string) *Machine {
	t.Helper()
	t.Setenv(fakeQemuEnv, mode)
	dir := t.TempDir()
	return &Machine{
		Image: &Image{Dir: dir, Kernel: &Kernel{Dir: dir}},
		Accel: TCG,
		QEMU:  os.Args[0],
	}
}

func TestRunJob(t *testing.T) {
	m := fakeMachine(t, "run")
	var out bytes.Buffer
	res, err := m.Run(context.Background(), Job{Script: "echo hello\necho oops >&2\nexit 3", Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	if res.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", res.ExitCode)
	}
	if res.Kernel != strings.TrimSpace(string(release)) || res.CgroupFS == "" {
		t.Errorf("header: kernel %q, cgroupfs %q", res.Kernel, res.CgroupFS)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"berth-vm: kernel " + res.Kernel, "berth-vm: cgroupfs " + res.CgroupFS, "hello", "oops"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("output %q, want %q (the job marker is not output)", lines, want)
	}
	if res.FirstLine <= 0 || res.FirstJobLine < res.FirstLine || res.Total < res.FirstJobLine {
		t.Errorf("times: first line %v, first job line %v, total %v", res.FirstLine, res.FirstJobLine, res.Total)
	}
}

func TestRunRequireCgroupFS(t *testing.T) {
	m := fakeMachine(t, "run")
	var out bytes.Buffer
	res, err := m.Run(context.Background(), Job{Script: "echo ran", RequireCgroupFS: "nosuchfs", Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 125 || strings.Contains(out.String(), "ran") || !strings.Contains(out.String(), "not nosuchfs") {
		t.Errorf("exit %d, output %q: want 125 and the job not run", res.ExitCode, out.String())
	}
}

// TestRunFailures checks that a guest that does not run the job fails
// within its bound, quoting its console.
func TestRunFailures(t *testing.T) {
	for _, c := range []struct {
		mode, script string
		boot, total  time.Duration
		want         string
	}{
		{"hang", "true", 300 * time.Millisecond, 0, "boot timeout"},
		{"crash", "true", 0, 0, "without recording"},
		{"nostatus", "true", 0, 0, "without recording"},
		{"run", "sleep 2", 0, 300 * time.Millisecond, "exceeded 300ms"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			m := fakeMachine(t, c.mode)
			m.BootTimeout, m.Timeout = c.boot, c.total
			start := time.Now()
			_, err := m.Run(context.Background(), Job{Script: c.script})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "fake console:") {
				t.Errorf("error %q: want %q and the console log", err, c.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	m := fakeMachine(t, "hang")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := m.Run(ctx, Job{Script: "true"}); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("err = %v, want the context's", err)
	}
}
