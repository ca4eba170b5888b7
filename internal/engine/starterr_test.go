package engine

import (
	"errors"
	"slices"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
)

// The runtimes' words for a program that cannot be started become
// docker's, with dockerd's exit codes; other failures keep theirs.
func TestStartError(t *testing.T) {
	for _, c := range []struct {
		in   string
		exec bool
		code int
		want string
	}{
		{`spawn shim for x: runtime create x: create: container init: find program: "nosuchcmd": executable file not found in $PATH`, false, 127,
			`failed to create task for container: failed to create shim task: OCI runtime create failed: unable to start container process: error during container init: exec: "nosuchcmd": executable file not found in $PATH: unknown`},
		{`runtime exec x: exec: find program: "nosuchcmd": executable file not found in $PATH`, true, 127,
			`OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuchcmd": executable file not found in $PATH: unknown`},
		{`runtime create x: container init: find program: "/no/such": no such file or directory`, false, 127,
			createFrame + `exec: "/no/such": stat /no/such: no such file or directory: unknown`},
		{`runtime create x: find program: "/etc/passwd": permission denied`, false, 126,
			createFrame + `exec: "/etc/passwd": permission denied: unknown`},
		{`runtime exec x: find program: "/tmp": is a directory`, true, 126,
			execFrame + `exec: "/tmp": is a directory: unknown`},
		// runc's own wording passes through in the same frame.
		{`runc create failed: unable to start container process: error during container init: exec: "a \"q\"": executable file not found in $PATH`, false, 127,
			createFrame + `exec: "a \"q\"": executable file not found in $PATH: unknown`},
		// Not a program that failed: the error as it was.
		{`mount /x on /y: no such file or directory`, false, 127, `mount /x on /y: no such file or directory`},
		{`cgroup: write memory.max: device or resource busy`, false, 128, `cgroup: write memory.max: device or resource busy`},
	} {
		in := errors.New(c.in)
		code, err := startError(in, c.exec)
		if code != c.code || err.Error() != c.want {
			t.Errorf("startError(%q, %v) = %d %q\nwant %d %q", c.in, c.exec, code, err, c.code, c.want)
		}
		if err.Error() != c.in && !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("startError(%q): %v is not an invalid request", c.in, err)
		}
	}
}

// docker diff leaves out what docker keeps in the init layer, and the
// directories above it when nothing else in them changed.
func TestHideInitLayer(t *testing.T) {
	ch := func(kind container.ChangeType, p string) container.FilesystemChange {
		return container.FilesystemChange{Kind: kind, Path: p}
	}
	paths := func(cs []container.FilesystemChange) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Kind.String()+" "+c.Path)
		}
		return out
	}
	only := []container.FilesystemChange{ch(container.ChangeModify, "/etc"), ch(container.ChangeAdd, "/etc/hostname"),
		ch(container.ChangeAdd, "/etc/hosts"), ch(container.ChangeAdd, "/etc/resolv.conf"), ch(container.ChangeAdd, "/proc")}
	if got := hideInitLayer(only); got == nil || len(got) != 0 {
		t.Errorf("init layer only: %q", paths(got))
	}
	more := append(slices.Clone(only), ch(container.ChangeAdd, "/etc/motd"), ch(container.ChangeDelete, "/etc/hosts.allow"),
		ch(container.ChangeModify, "/dev"), ch(container.ChangeAdd, "/dev/console"), ch(container.ChangeAdd, "/tmp"), ch(container.ChangeAdd, "/tmp/hosts"))
	want := []string{"C /etc", "A /etc/motd", "D /etc/hosts.allow", "A /tmp", "A /tmp/hosts"}
	if got := paths(hideInitLayer(more)); !slices.Equal(got, want) {
		t.Errorf("with other changes: %q, want %q", got, want)
	}
	// A deletion of /etc/hosts is the user's, not the runtime's.
	if got := paths(hideInitLayer([]container.FilesystemChange{ch(container.ChangeModify, "/etc"), ch(container.ChangeDelete, "/etc/hosts")})); len(got) != 2 {
		t.Errorf("deleted /etc/hosts hidden: %q", got)
	}
}
