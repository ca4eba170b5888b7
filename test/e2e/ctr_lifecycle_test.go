package e2e

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The messages dockerd gives a program that cannot be started.
const (
	runNotFound  = `failed to create task for container: failed to create shim task: OCI runtime create failed: unable to start container process: error during container init: exec: "nosuchcmd": executable file not found in $PATH: unknown`
	execNotFound = `OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuchcmd": executable file not found in $PATH: unknown`
)

// The containers of these tests run with --network none: networking is
// not what they check, and the daemons of test packages running side by
// side share the host's default bridge.

// bothCLIs runs f with the docker CLI (when installed) and with berth.
func bothCLIs(t *testing.T, d *daemon, f func(t *testing.T, c cliRunner)) {
	clis := []cliRunner{{name: "berth", run: d.berthIn}}
	if _, err := os.Stat(dockerCLI(t)); err == nil {
		clis = append(clis, cliRunner{name: "docker", run: d.dockerIn})
	}
	for _, c := range clis {
		t.Run(c.name, func(t *testing.T) { f(t, c) })
	}
}

// A program that is not there, as run and as exec: docker's words and
// exit codes; the container that could not start stays "created" with
// 127 and the error, as with dockerd. And docker diff of a container
// that changed nothing is empty.
func TestCtrProgramNotFound(t *testing.T) {
	ref := seed(t)
	d := startDaemon(t)
	d.removeAllContainers(t)
	d.mustBerth(t, "pull", "-q", ref)
	bothCLIs(t, d, func(t *testing.T, c cliRunner) {
		r := c.code(t, 127, "run", "--network", "none", "--name", "bad-"+c.name, ref, "nosuchcmd")
		mustContain(t, "run nosuchcmd", r.Stderr, runNotFound)
		if out := c.must(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}", "bad-"+c.name); out != "created 127 "+runNotFound+"\n" {
			t.Errorf("the container that could not start: %q", out)
		}
		// start -a waits for the output of a start that fails: it ends.
		r = c.run(t, "", "start", "-a", "bad-"+c.name)
		if r.Code == 0 || !strings.Contains(r.Stderr, runNotFound) {
			t.Errorf("start -a: %+v", r)
		}

		c.must(t, "run", "--network", "none", "-d", "--name", "svc-"+c.name, ref, "sleep", "1000")
		r = c.code(t, 127, "exec", "svc-"+c.name, "nosuchcmd")
		mustContain(t, "exec nosuchcmd", r.Stdout+r.Stderr, execNotFound)
		if out := c.must(t, "diff", "svc-"+c.name); out != "" {
			t.Errorf("diff of an untouched container: %q", out)
		}
		c.must(t, "rm", "-f", "svc-"+c.name, "bad-"+c.name)
	})
}

// leftovers lists what is left of container id on the host: files and
// directories naming it under the daemon's roots, mounts, cgroups and
// processes.
func leftovers(t *testing.T, d *daemon, id string) []string {
	t.Helper()
	var out []string
	for _, root := range []string{d.DataRoot, d.ExecRoot} {
		filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err == nil && strings.Contains(e.Name(), id) {
				out = append(out, "file "+p)
			}
			return nil
		})
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, id) {
				out = append(out, "mount "+l)
			}
		}
	}
	filepath.WalkDir("/sys/fs/cgroup", func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil
		}
		if strings.Contains(e.Name(), id) {
			out = append(out, "cgroup "+p)
			return fs.SkipDir
		}
		if strings.Count(strings.TrimPrefix(p, "/sys/fs/cgroup"), "/") >= 3 {
			return fs.SkipDir
		}
		return nil
	})
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmd, _ := os.ReadFile(p + "/cmdline")
		cg, _ := os.ReadFile(p + "/cgroup")
		if strings.Contains(string(cmd), id) || strings.Contains(string(cg), id) {
			out = append(out, "process "+p+": "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	return out
}

// snapshotCount is the number of snapshots the daemon's store holds.
func snapshotCount(t *testing.T, d *daemon) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(d.DataRoot, "image", "snapshots", "snapshots"))
	if err != nil {
		t.Fatalf("snapshot store: %v", err)
	}
	return len(ents)
}

// --rm, and rm -f of a running container: nothing of the container is
// left (no file, mount, cgroup, snapshot, shim or container process).
func TestCtrNothingLeftBehind(t *testing.T) {
	ref := seed(t)
	d := startDaemon(t)
	d.removeAllContainers(t)
	d.mustBerth(t, "pull", "-q", ref)
	snaps := snapshotCount(t, d)
	bothCLIs(t, d, func(t *testing.T, c cliRunner) {
		// --rm: the ID from --cidfile (docker) or from -d (berth).
		var id string
		if c.name == "docker" {
			cid := filepath.Join(scratchDir(t), "cid")
			if out := c.must(t, "run", "--network", "none", "--rm", "--cidfile", cid, ref, "sh", "-c", "echo hi > /tmp/x; cat /tmp/x"); out != "hi\n" {
				t.Errorf("run --rm: %q", out)
			}
			b, err := os.ReadFile(cid)
			if err != nil {
				t.Fatal(err)
			}
			id = string(b)
		} else {
			id = strings.TrimSpace(c.must(t, "run", "--network", "none", "-d", "--rm", ref, "sh", "-c", "echo hi > /tmp/x; sleep 0.3"))
		}
		waitFor(t, "the --rm container to go", func() bool { return c.run(t, "", "inspect", id).Code != 0 })
		if l := leftovers(t, d, id); len(l) > 0 {
			t.Errorf("--rm left:\n%s", strings.Join(l, "\n"))
		}

		// rm -f of a running container, with an exec running in it.
		id = strings.TrimSpace(c.must(t, "run", "--network", "none", "-d", ref, "sh", "-c", "sleep 1000 & exec sleep 1000"))
		c.must(t, "exec", "-d", id, "sleep", "1000")
		pid, _ := strconv.Atoi(strings.TrimSpace(c.must(t, "inspect", "-f", "{{.State.Pid}}", id)))
		if l := leftovers(t, d, id); len(l) < 3 {
			t.Errorf("a running container shows too little for the check to mean anything: %v", l)
		}
		c.must(t, "rm", "-f", id)
		if l := leftovers(t, d, id); len(l) > 0 {
			t.Errorf("rm -f left:\n%s", strings.Join(l, "\n"))
		}
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("process %d of the removed container still exists", pid)
		}
		if n := snapshotCount(t, d); n != snaps {
			t.Errorf("%d snapshots after the containers went, %d before", n, snaps)
		}
	})
}

// berthd killed with SIGKILL while containers run, then started again:
// the running container is still running and can be reached (logs,
// exec, stop); one that ended meanwhile has its real exit status and
// all its output; one whose restart policy asks for it runs again.
func TestCtrDaemonKilled(t *testing.T) {
	ref := seed(t)
	d := startDaemon(t)
	d.removeAllContainers(t)
	d.mustBerth(t, "pull", "-q", ref)
	d.mustBerth(t, "run", "--network", "none", "-d", "--name", "lr", ref, "sh", "-c", "echo before; exec sleep 1000")
	d.mustBerth(t, "run", "--network", "none", "-d", "--name", "ends", ref, "sh", "-c", "echo one; sleep 2; echo two >&2; exit 5")
	d.mustBerth(t, "run", "--network", "none", "-d", "--name", "again", "--restart", "on-failure:1", ref, "sh", "-c", "echo run; sleep 2; exit 3")
	waitFor(t, "the first line of lr", func() bool { return d.berth(t, "logs", "lr").Stdout == "before\n" })
	pid := strings.TrimSpace(d.mustBerth(t, "inspect", "-f", "{{.State.Pid}}", "lr"))
	endsPid := strings.TrimSpace(d.mustBerth(t, "inspect", "-f", "{{.State.Pid}}", "ends"))

	d.cmd.Process.Signal(syscall.SIGKILL)
	// ends exits while no berthd runs.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + endsPid); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container meant to end while berthd is down did not end")
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.restart(t)

	if _, err := os.Stat("/proc/" + pid); err != nil {
		t.Fatalf("lr's process %s is gone after berthd was killed: %v", pid, err)
	}
	mustContain(t, "ps after the restart", d.mustBerth(t, "ps", "--format", "{{.Names}} {{.State}}"), "lr running\n")
	if out := d.mustBerth(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "ends"); out != "exited 5\n" {
		t.Errorf("ends after the restart: %q", out)
	}
	if r := d.berth(t, "logs", "ends"); r.Stdout != "one\n" || r.Stderr != "two\n" {
		t.Errorf("logs of ends: %q %q", r.Stdout, r.Stderr)
	}
	waitFor(t, "the restart policy to run again", func() bool {
		return d.berth(t, "inspect", "-f", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", "again").Stdout == "1 exited 3\n"
	})
	if out := d.mustBerth(t, "logs", "again"); out != "run\nrun\n" {
		t.Errorf("logs of again: %q", out)
	}
	if out := d.mustBerth(t, "logs", "lr"); out != "before\n" {
		t.Errorf("logs of lr: %q", out)
	}
	if out := d.mustBerth(t, "exec", "lr", "echo", "reached"); out != "reached\n" {
		t.Errorf("exec after the restart: %q", out)
	}
	d.mustBerth(t, "stop", "-t", "1", "lr")
	if out := d.mustBerth(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "lr"); out != "exited 137\n" {
		t.Errorf("lr after stop: %q", out)
	}
}

// Restart policies through the CLIs: on-failure:N restarts a crashing
// container N times, always brings one back until it is stopped.
func TestCtrRestartPolicyCLI(t *testing.T) {
	ref := seed(t)
	d := startDaemon(t)
	d.removeAllContainers(t)
	d.mustBerth(t, "pull", "-q", ref)
	bothCLIs(t, d, func(t *testing.T, c cliRunner) {
		n := "crash-" + c.name
		c.must(t, "run", "--network", "none", "-d", "--name", n, "--restart", "on-failure:2", ref, "sh", "-c", "echo crash; exit 3")
		waitFor(t, "two restarts", func() bool {
			return c.run(t, "", "inspect", "-f", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", n).Stdout == "2 exited 3\n"
		})
		if r := c.run(t, "", "logs", n); r.Stdout != "crash\ncrash\ncrash\n" {
			t.Errorf("logs after on-failure:2: %q", r.Stdout)
		}
		a := "always-" + c.name
		c.must(t, "run", "--network", "none", "-d", "--name", a, "--restart", "always", ref, "sh", "-c", "echo up; sleep 0.2; exit 1")
		waitFor(t, "two restarts of always", func() bool {
			n, _ := strconv.Atoi(strings.TrimSpace(c.run(t, "", "inspect", "-f", "{{.RestartCount}}", a).Stdout))
			return n >= 2
		})
		c.must(t, "stop", "-t", "1", a)
		count := c.must(t, "inspect", "-f", "{{.RestartCount}}", a)
		time.Sleep(time.Second)
		if out := c.must(t, "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", a); out != strings.TrimSpace(count)+" exited\n" {
			t.Errorf("always after stop: %q (restart count was %s)", out, strings.TrimSpace(count))
		}
	})
}

// docker update and --init through the CLIs.
func TestCtrUpdateAndInit(t *testing.T) {
	ref := seed(t)
	d := startDaemon(t)
	d.removeAllContainers(t)
	d.mustBerth(t, "pull", "-q", ref)
	_, err := os.Stat(filepath.Join(d.bin, "berth-init"))
	haveInit := err == nil
	bothCLIs(t, d, func(t *testing.T, c cliRunner) {
		u := "upd-" + c.name
		c.must(t, "run", "--network", "none", "-d", "--name", u, "-m", "64m", ref, "sleep", "1000")
		if out := c.must(t, "update", "--memory", "96m", "--pids-limit", "10", "--cpu-shares", "256", "--restart", "unless-stopped", u); out != u+"\n" {
			t.Errorf("update printed %q", out)
		}
		if out := c.must(t, "inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}} {{.HostConfig.RestartPolicy.Name}}", u); out != "100663296 10 256 unless-stopped\n" {
			t.Errorf("inspect after update: %q", out)
		}
		read := "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"
		if out := c.must(t, "exec", u, "sh", "-c", read); out != "100663296\n10\n" {
			t.Errorf("cgroup after update: %q", out)
		}
		r := c.code(t, 1, "update", "--memory", "1m", u)
		mustContain(t, "update below 6MB", r.Stderr, "minimum memory limit allowed is 6MB")
		r = c.code(t, 125, "update", "--memory", "abc", u)
		mustContain(t, "update --memory abc", r.Stderr, `invalid argument "abc" for "-m, --memory" flag`)

		if !haveInit {
			t.Log("no berth-init beside berthd: --init not tested")
			return
		}
		in := "init-" + c.name
		c.must(t, "run", "--network", "none", "-d", "--init", "--name", in, ref, "sh", "-c", "(sleep 0.1 &); (sleep 0.1 &); trap 'exit 9' TERM; while :; do sleep 0.1; done")
		if out := c.must(t, "exec", in, "cat", "/proc/1/cmdline"); !strings.HasPrefix(out, "/sbin/docker-init\x00--\x00sh\x00") {
			t.Errorf("PID 1 with --init: %q", out)
		}
		time.Sleep(time.Second)
		zombies := `n=0; for s in /proc/[0-9]*/stat; do case "$(cat $s 2>/dev/null)" in *") Z "*) n=$((n+1));; esac; done; echo $n`
		if out := c.must(t, "exec", in, "sh", "-c", zombies); out != "0\n" {
			t.Errorf("zombies with --init: %q", out)
		}
		c.must(t, "stop", "-t", "10", in)
		if out := c.must(t, "inspect", "-f", "{{.State.ExitCode}}", in); out != "9\n" {
			t.Errorf("--init container's exit after stop: %q, want the trap's 9", out)
		}
		c.code(t, 7, "run", "--network", "none", "--rm", "--init", ref, "sh", "-c", "exit 7")
	})
}

// --runtime berth-runtime, runc and crun: the peers installed here run
// berth's containers too. They predate the time namespace, which berth-runtime's
// containers get, so the engine leaves it out of their specs (a spec
// naming it would fail every start).
func TestCtrOtherRuntimes(t *testing.T) {
	ref := seed(t)
	d := startDaemon(t)
	d.removeAllContainers(t)
	d.mustBerth(t, "pull", "-q", ref)
	for _, rt := range []string{"berth-runtime", "runc", "crun"} {
		t.Run(rt, func(t *testing.T) {
			if _, err := exec.LookPath(rt); err != nil && rt != "berth-runtime" { // berthd's own, beside it
				t.Skipf("%s not installed", rt)
			}
			r := d.berth(t, "run", "--rm", "--network", "none", "--runtime", rt, ref, "sh", "-c", "echo hi")
			if strings.Contains(r.Stderr, "cgroups in hybrid mode not supported") {
				// crun refuses hosts like this one, with controllers on
				// v1 and hugetlb on cgroup2; the error is crun's own.
				t.Skipf("%s refuses this host's cgroups: %s", rt, r.Stderr)
			}
			if r.Code != 0 || r.Stdout != "hi\n" {
				t.Errorf("run --runtime %s: %+v", rt, r)
			}
			r = d.berth(t, "run", "--rm", "--network", "none", "--runtime", rt, ref, "sh", "-c", "exit 3")
			if r.Code != 3 {
				t.Errorf("exit status through %s: %+v", rt, r)
			}
			id := strings.TrimSpace(d.mustBerth(t, "run", "-d", "--network", "none", "--runtime", rt, ref, "sleep", "1000"))
			if got := d.mustBerth(t, "inspect", "-f", "{{.HostConfig.Runtime}} {{.State.Running}}", id); got != rt+" true\n" {
				t.Errorf("inspect: %q", got)
			}
			// An idle shim sheds a second after the start, unless an exec
			// came first: the execs below come after.
			time.Sleep(2 * time.Second)
			if got := d.mustBerth(t, "exec", id, "echo", "in"); got != "in\n" {
				t.Errorf("exec through %s: %q", rt, got)
			}
			// The shim keeps transparent huge pages off for itself; the
			// container's processes have the host's policy, execs after
			// the shim has shed included (see the wait above).
			if got := d.mustBerth(t, "exec", id, "sh", "-c", "grep THP_enabled /proc/1/status /proc/self/status"); strings.Count(got, "THP_enabled:\t1") != 2 {
				t.Errorf("THP in the container of %s:\n%s", rt, got)
			}
			d.mustBerth(t, "rm", "-f", id)
			if l := leftovers(t, d, id); len(l) > 0 {
				t.Errorf("rm -f left:\n%s", strings.Join(l, "\n"))
			}
		})
	}
}
