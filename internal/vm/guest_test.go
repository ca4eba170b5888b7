package vm

import (
	"os/exec"
	"strings"
	"testing"
)

func TestGuestScriptsParse(t *testing.T) {
	job := jobScriptText("echo hi", []Share{
		{Tag: "berth.bin", HostPath: "/h", GuestPath: "/run/berth-vm/bin", ReadOnly: true},
		{Tag: "berth.src", HostPath: "/s", GuestPath: "/run/berth-vm/my src"},
		{Tag: jobTag, HostPath: "/j"},
	}, "cgroup2fs")
	for name, script := range map[string]string{"agent": agentScript, "job": job, "init": initScript} {
		cmd := exec.Command("sh", "-n")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s script: sh -n: %v: %s", name, err, out)
		}
	}
	for _, want := range []string{
		"mkdir -p /run/berth-vm/bin '/run/berth-vm/my src' || return 1",
		"mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro,cache=loose berth.bin /run/berth-vm/bin &",
		"mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 berth.src '/run/berth-vm/my src' &",
		"wait $shares || exit 125",
		`if [ "$fs" != cgroup2fs ]`,
		"stat -f -c %T /sys/fs/cgroup",
	} {
		if !strings.Contains(job, want) {
			t.Errorf("job script lacks %q:\n%s", want, job)
		}
	}
	if strings.Contains(job, jobTag) {
		t.Errorf("job script mounts the job share, which the agent mounts:\n%s", job)
	}
	if !strings.HasSuffix(job, "echo \"berth-vm: job\"\necho hi\n") {
		t.Errorf("job script does not end with the marker and the job:\n%s", job)
	}
}

func TestShellCommand(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"false"}, "false"},
		{[]string{"sh", "-c", "echo $HOME; exit 2"}, `sh -c 'echo $HOME; exit 2'`},
		{[]string{"echo", "it's", ""}, `echo 'it'\''s' ''`},
	} {
		if got := ShellCommand(c.args); got != c.want {
			t.Errorf("ShellCommand(%q) = %s, want %s", c.args, got, c.want)
		}
	}
	out, err := exec.Command("sh", "-c", ShellCommand([]string{"printf", "%s|", "a b", "it's", "$x", "`y`"})).Output()
	if err != nil || string(out) != "a b|it's|$x|`y`|" {
		t.Errorf("round trip through sh: %q, %v", out, err)
	}
}
