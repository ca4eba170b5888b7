package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Hook kinds, spelled as the keys of config.json's "hooks" object.
const (
	Prestart        = "prestart"
	CreateRuntime   = "createRuntime"
	CreateContainer = "createContainer"
	StartContainer  = "startContainer"
	Poststart       = "poststart"
	Poststop        = "poststop"
)

// outputLimit bounds how much of a hook's output an error carries: a hook
// that loops printing must not grow the runtime's memory (CVE-2022-31030 is
// the same class for exec).
const outputLimit = 4096

// waitDelay is how long Run waits for a hook's stdout and stderr to close
// after the hook exited or was killed; a daemon the hook started may hold
// them open forever.
const waitDelay = time.Second

// Validate checks every hook of h: an absolute path and, when set, a
// positive timeout. A nil h is valid.
func Validate(h *specs.Hooks) error {
	if h == nil {
		return nil
	}
	for _, k := range []struct {
		kind  string
		hooks []specs.Hook
	}{
		{Prestart, h.Prestart},
		{CreateRuntime, h.CreateRuntime},
		{CreateContainer, h.CreateContainer},
		{StartContainer, h.StartContainer},
		{Poststart, h.Poststart},
		{Poststop, h.Poststop},
	} {
		for i := range k.hooks {
			if err := validate(&k.hooks[i]); err != nil {
				return fmt.Errorf("validate hooks.%s[%d]: %w", k.kind, i, err)
			}
		}
	}
	return nil
}

func validate(h *specs.Hook) error {
	if !filepath.IsAbs(h.Path) {
		return fmt.Errorf("path %q is not absolute: %w", h.Path, syscall.EINVAL)
	}
	if h.Timeout != nil && *h.Timeout <= 0 {
		return fmt.Errorf("timeout %d is not positive: %w", *h.Timeout, syscall.EINVAL)
	}
	return nil
}

// Run runs hooks, the list of the given kind, one after the other, each
// with state as JSON on its stdin. It returns the first failure, as
// "<kind> hook #<i> (<path>): <what>: <output>", where what is the exit
// status, the signal, "timed out after Ns" (wrapping
// context.DeadlineExceeded) or the context's error when ctx ends first.
// Either way the hook's process group has been sent SIGKILL.
func Run(ctx context.Context, kind string, hooks []specs.Hook, state *specs.State) error {
	if len(hooks) == 0 {
		return nil
	}
	for i := range hooks {
		if err := validate(&hooks[i]); err != nil {
			return fmt.Errorf("%s hook #%d: %w", kind, i, err)
		}
	}
	if state == nil {
		return fmt.Errorf("run %s hooks: no container state to pass: %w", kind, syscall.EINVAL)
	}
	stdin, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("run %s hooks: encode state: %w", kind, err)
	}
	for i := range hooks {
		if err := runOne(ctx, &hooks[i], stdin); err != nil {
			return fmt.Errorf("%s hook #%d (%s): %w", kind, i, hooks[i].Path, err)
		}
	}
	return nil
}

func runOne(ctx context.Context, h *specs.Hook, stdin []byte) error {
	hctx, cancel := ctx, context.CancelFunc(func() {})
	if h.Timeout != nil {
		hctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
	}
	defer cancel()

	out := &tail{}
	cmd := exec.CommandContext(hctx, h.Path)
	cmd.Args = argv(h)
	cmd.Env = env(h)
	cmd.Stdin = bytes.NewReader(stdin)
	// One writer for both streams: exec then uses a single pipe and the
	// output keeps the order the hook wrote it in.
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The hook leads its own group (Setpgid): kill the group, so a
		// shell script's children die with it and release the pipes.
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = waitDelay

	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// The hook succeeded but left a descendant holding its output.
		err = nil
	}
	if err == nil {
		return nil
	}
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case hctx.Err() != nil:
		err = fmt.Errorf("timed out after %ds: %w", *h.Timeout, context.DeadlineExceeded)
	}
	if s := out.String(); s != "" {
		return fmt.Errorf("%w: %s", err, s)
	}
	return err
}

// argv is the hook's argv: args as given, args[0] being argv[0], or just
// the path when args is empty.
func argv(h *specs.Hook) []string {
	if len(h.Args) == 0 {
		return []string{h.Path}
	}
	return append([]string(nil), h.Args...)
}

// env is the hook's whole environment. exec.Cmd reads a nil Env as "inherit
// the runtime's", which a hook must never get, so absent becomes empty.
func env(h *specs.Hook) []string {
	if len(h.Env) == 0 {
		return []string{}
	}
	return append([]string(nil), h.Env...)
}

// tail keeps the last outputLimit bytes written to it.
type tail struct {
	mu        sync.Mutex
	buf       []byte
	truncated bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= outputLimit {
		t.truncated = t.truncated || len(t.buf) > 0 || len(p) > outputLimit
		t.buf = append(t.buf[:0], p[len(p)-outputLimit:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - outputLimit; over > 0 {
		t.truncated = true
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// String returns the kept output, trimmed, marked when its start was cut.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.buf))
	if t.truncated && s != "" {
		s = "..." + s
	}
	return s
}
