package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// cliRunner runs one client (the docker CLI or berth) against a daemon.
type cliRunner struct {
	name string
	run  func(t *testing.T, stdin string, args ...string) result
}

func (c cliRunner) must(t *testing.T, args ...string) string {
	t.Helper()
	r := c.run(t, "", args...)
	if r.Code != 0 {
		t.Fatalf("%s %s: exit %d\nstdout: %s\nstderr: %s", c.name, strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

func (c cliRunner) code(t *testing.T, want int, args ...string) result {
	t.Helper()
	r := c.run(t, "", args...)
	if r.Code != want {
		t.Fatalf("%s %s: exit %d, want %d\nstdout: %s\nstderr: %s", c.name, strings.Join(args, " "), r.Code, want, r.Stdout, r.Stderr)
	}
	return r
}

var fullID = regexp.MustCompile(`^[0-9a-f]{64}\n$`)

// containerFlows is what a user does with containers, the same through
// the docker CLI and berth: run (pulling the image it lacks), exit
// codes, detached containers in ps, logs and logs -f, exec with its exit
// code and stdin, run -i, cp both ways, named volumes, inspect, stop, rm.
func containerFlows(t *testing.T, d *daemon, c cliRunner, ref string) {
	r := c.code(t, 0, "run", "--rm", ref, "echo", "hello")
	if r.Stdout != "hello\n" {
		t.Errorf("run echo: stdout %q", r.Stdout)
	}
	mustContain(t, "run of a missing image", r.Stderr, "Unable to find image '"+ref+"' locally")
	c.code(t, 3, "run", ref, "sh", "-c", "exit 3")
	r = c.code(t, 127, "run", "--rm", ref, "nosuchcommand")
	mustContain(t, "run of a missing command", r.Stderr, "nosuchcommand", "executable file not found")

	id := c.must(t, "run", "-d", "--name", "svc", ref, "sh", "-c", "echo started; exec sleep 1000")
	if !fullID.MatchString(id) {
		t.Fatalf("run -d printed %q, want a container ID", id)
	}
	id = strings.TrimSpace(id)
	ps := c.must(t, "ps")
	lines := strings.Split(strings.TrimSpace(ps), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$`).MatchString(lines[0]) {
		t.Fatalf("%s ps:\n%s", c.name, ps)
	}
	if !regexp.MustCompile(`^` + id[:12] + ` +` + regexp.QuoteMeta(ref) + ` +"sh -c [^"]{6,14}…" +(\d+ seconds?|Less than a second) ago +Up .* +svc$`).MatchString(lines[1]) {
		t.Errorf("%s ps row: %q", c.name, lines[1])
	}
	if q := c.must(t, "ps", "-aq"); len(strings.Fields(q)) != 2 {
		t.Errorf("ps -aq: %q", q)
	}
	waitFor(t, "the log of svc", func() bool { return c.run(t, "", "logs", "svc").Stdout == "started\n" })

	c.must(t, "run", "-d", "--name", "short", ref, "sh", "-c", "echo one; sleep 1; echo two >&2")
	r = c.code(t, 0, "logs", "-f", "short")
	if r.Stdout != "one\n" || r.Stderr != "two\n" {
		t.Errorf("logs -f: stdout %q stderr %q", r.Stdout, r.Stderr)
	}

	r = c.code(t, 4, "exec", "svc", "sh", "-c", "echo in exec; echo err >&2; exit 4")
	if r.Stdout != "in exec\n" || r.Stderr != "err\n" {
		t.Errorf("exec: stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	if r = c.run(t, "xyz\n", "exec", "-i", "svc", "cat"); r.Code != 0 || r.Stdout != "xyz\n" {
		t.Errorf("exec -i: %+v", r)
	}
	if r = c.run(t, "piped\n", "run", "-i", "--rm", ref, "cat"); r.Code != 0 || r.Stdout != "piped\n" {
		t.Errorf("run -i: %+v", r)
	}

	local := scratchDir(t)
	src := filepath.Join(local, "in.txt")
	os.WriteFile(src, []byte("copied in\n"), 0o644)
	c.must(t, "cp", src, "svc:/tmp/")
	if out := c.must(t, "exec", "svc", "cat", "/tmp/in.txt"); out != "copied in\n" {
		t.Errorf("cp in: %q", out)
	}
	c.must(t, "cp", "svc:/etc/hostname", filepath.Join(local, "h"))
	if b, _ := os.ReadFile(filepath.Join(local, "h")); string(b) != id[:12]+"\n" {
		t.Errorf("cp out: %q", b)
	}

	if out := c.must(t, "volume", "create", "v1"); out != "v1\n" {
		t.Errorf("volume create: %q", out)
	}
	c.must(t, "run", "--rm", "-v", "v1:/data", ref, "sh", "-c", "echo kept > /data/x")
	if out := c.must(t, "run", "--rm", "-v", "v1:/data:ro", ref, "cat", "/data/x"); out != "kept\n" {
		t.Errorf("volume content: %q", out)
	}
	mustContain(t, "volume ls", c.must(t, "volume", "ls"), "DRIVER    VOLUME NAME\nlocal     v1\n")

	if out := c.must(t, "inspect", "-f", "{{.State.Running}} {{.Name}} {{.Config.Image}} {{.Id}}", "svc"); out != "true /svc "+ref+" "+id+"\n" {
		t.Errorf("inspect -f: %q", out)
	}
	var insp []map[string]any
	if err := json.Unmarshal([]byte(c.must(t, "inspect", "svc", "v1")), &insp); err != nil || len(insp) != 2 {
		t.Fatalf("inspect of a container and a volume: %v %d", err, len(insp))
	}
	if insp[0]["Id"] != id || insp[1]["Name"] != "v1" {
		t.Errorf("inspect: %v / %v", insp[0]["Id"], insp[1]["Name"])
	}

	r = c.code(t, 1, "rm", "svc")
	mustContain(t, "rm of a running container", r.Stderr, "stop the container before removing or force remove")
	if out := c.must(t, "stop", "-t", "1", "svc"); out != "svc\n" {
		t.Errorf("stop: %q", out)
	}
	mustContain(t, "ps -a", c.must(t, "ps", "-a", "--filter", "name=svc"), "Exited (137) ")
	c.must(t, "rm", "svc", "short")
	c.must(t, "volume", "rm", "v1")
	if q := c.must(t, "ps", "-aq"); len(strings.Fields(q)) != 1 {
		t.Errorf("ps -aq after rm: %q", q)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestContainersDockerCLI(t *testing.T) {
	dockerCLI(t)
	ref := seed(t)
	d := startDaemon(t)
	d.removeAllContainers(t)
	containerFlows(t, d, cliRunner{name: "docker", run: d.dockerIn}, ref)
}

func TestContainersBerth(t *testing.T) {
	ref := seed(t)
	d := startDaemon(t)
	d.removeAllContainers(t)
	containerFlows(t, d, cliRunner{name: "berth", run: d.berthIn}, ref)
}

// TestRunTTY types into `docker run -it` and `berth run -it` on a real
// pseudo-terminal: the shell's prompt, a command's output, and the exit
// status of `exit 7`.
func TestRunTTY(t *testing.T) {
	ref := seed(t)
	d := startDaemon(t)
	d.removeAllContainers(t)
	d.mustBerth(t, "pull", "-q", ref)
	clients := [][]string{{filepath.Join(d.bin, "berth"), "-H", d.Host}}
	if _, err := os.Stat(dockerCLI(t)); err == nil {
		clients = append(clients, []string{dockerCLI(t)})
	}
	for _, cl := range clients {
		tm := startTerm(t, d.dockerEnv(), cl[0], append(cl[1:], "run", "-it", "--rm", ref, "sh")...)
		tm.expect("# ")
		tm.send("echo $((6*7)); stty size\r")
		tm.expect("42\r\n")
		tm.expect("30 100")
		tm.send("exit 7\r")
		if code := tm.wait(); code != 7 {
			t.Errorf("%s run -it: exit %d, want 7; terminal:\n%q", cl[0], code, tm.output())
		}
	}

	// The size a client gives at create (HostConfig.ConsoleSize, which
	// both CLIs send) is the terminal's from the start, before any
	// resize: a program that asks at once sees it.
	body := fmt.Sprintf(`{"Image":%q,"Tty":true,"Cmd":["stty","size"],"HostConfig":{"ConsoleSize":[25,90],"NetworkMode":"none"}}`, ref)
	resp, err := d.request(t, "POST", "/containers/create?name=sized", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create with a console size: status %d", resp.StatusCode)
	}
	d.mustBerth(t, "start", "sized")
	if out := d.mustBerth(t, "wait", "sized"); out != "0\n" {
		t.Errorf("stty size in a sized terminal: exit %q", out)
	}
	if out := d.mustBerth(t, "logs", "sized"); out != "25 90\r\n" {
		t.Errorf("stty size in a terminal created 25x90: %q", out)
	}
	d.mustBerth(t, "rm", "sized")
}

// TestLiveRestore restarts berthd (SIGTERM, start) while a container
// runs: the container keeps running, berthd finds it again, and it can
// be stopped and its log read.
func TestLiveRestore(t *testing.T) {
	ref := seed(t)
	d := startDaemon(t)
	d.removeAllContainers(t)
	d.mustBerth(t, "pull", "-q", ref)
	d.mustBerth(t, "run", "-d", "--name", "lr", ref, "sh", "-c", "echo before; exec sleep 1000")
	d.mustBerth(t, "run", "-d", "--name", "ends", ref, "sh", "-c", "sleep 1; exit 5")
	pid := strings.TrimSpace(d.mustBerth(t, "inspect", "-f", "{{.State.Pid}}", "lr"))
	d.restart(t)
	if _, err := os.Stat("/proc/" + pid); err != nil {
		t.Fatalf("the container's process %s is gone after the restart: %v", pid, err)
	}
	ps := d.mustBerth(t, "ps", "--format", "{{.Names}} {{.State}}")
	mustContain(t, "ps after the restart", ps, "lr running\n")
	waitFor(t, "the exit of a container that ended across the restart", func() bool {
		return d.berth(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "ends").Stdout == "exited 5\n"
	})
	if out := d.mustBerth(t, "logs", "lr"); out != "before\n" {
		t.Errorf("logs after the restart: %q", out)
	}
	d.mustBerth(t, "stop", "-t", "1", "lr")
	if out := d.mustBerth(t, "inspect", "-f", "{{.State.Status}}", "lr"); out != "exited\n" {
		t.Errorf("after stop: %q", out)
	}
	if _, err := os.Stat("/proc/" + pid); err == nil {
		t.Errorf("process %s still exists after stop", pid)
	}
}
