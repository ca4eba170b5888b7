package runtimeclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/linux/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Container statuses, as `state` reports them.
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusPaused   = "paused"
	StatusStopped  = "stopped"
)

// State is the output of `state`, and each entry of `list --format json`.
type State struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
}

// State returns the state of container id.
func (r *Runtime) State(ctx context.Context, id string) (*State, error) {
	out, err := r.run(ctx, id, []string{"state", id}, nil)
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, &Error{Op: "state", ID: id, Msg: fmt.Sprintf("unreadable output %.200q: %v", out, err), Status: 0}
	}
	return &s, nil
}

// List returns the state of every container under Root.
func (r *Runtime) List(ctx context.Context) ([]State, error) {
	out, err := r.run(ctx, "", []string{"list", "--format", "json"}, nil)
	if err != nil {
		return nil, err
	}
	var s []State
	// runc prints "null" for no containers, crun "[]".
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, &Error{Op: "list", Msg: fmt.Sprintf("unreadable output %.200q: %v", out, err)}
	}
	return s, nil
}

// Ps returns the pids of every process of container id, as the host sees
// them.
func (r *Runtime) Ps(ctx context.Context, id string) ([]int, error) {
	out, err := r.run(ctx, id, []string{"ps", "--format", "json", id}, nil)
	if err != nil {
		return nil, err
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return nil, &Error{Op: "ps", ID: id, Msg: fmt.Sprintf("unreadable output %.200q: %v", out, err)}
	}
	return pids, nil
}

// Event is one line of `events`: type "stats" with Data, or "oom".
type Event struct {
	Type string         `json:"type"`
	ID   string         `json:"id"`
	Data *cgroups.Stats `json:"data,omitempty"`
}

// Stats samples the cgroup statistics of container id once
// (`events --stats`).
func (r *Runtime) Stats(ctx context.Context, id string) (*cgroups.Stats, error) {
	out, err := r.run(ctx, id, []string{"events", "--stats", id}, nil)
	if err != nil {
		return nil, err
	}
	var ev Event
	if err := json.Unmarshal(out, &ev); err != nil || ev.Data == nil {
		return nil, &Error{Op: "events", ID: id, Msg: fmt.Sprintf("unreadable statistics %.200q: %v", out, err)}
	}
	return ev.Data, nil
}

// Events calls fn with each event of container id (statistics every
// interval, and OOM kills as they happen) until ctx ends (nil is
// returned), the container stops, or fn fails (its error is returned).
// Each call holds one runtime process.
func (r *Runtime) Events(ctx context.Context, id string, interval time.Duration, fn func(*Event) error) error {
	if interval <= 0 {
		return fmt.Errorf("runtime events %s: interval %v is not positive", id, interval)
	}
	log, err := newMemfd("runtime-log")
	if err != nil {
		return err
	}
	defer log.close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("runtime events %s: %w", id, err)
	}
	argv := append(r.globalArgs(log.path()), "events", "--interval", interval.String(), id)
	cmd := exec.Command(r.Path, argv...)
	cmd.Env = r.Env
	cmd.Stdout = pw
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	started := make(chan struct{})
	go func() {
		s, err := r.startWait(ctx, cmd, func() { close(started) })
		done <- result{s, err}
	}()
	<-started
	pw.Close()
	var fnErr error
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), maxOutput)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			continue
		}
		if fnErr = fn(&ev); fnErr != nil {
			cancel()
			break
		}
	}
	pr.Close()
	res := <-done
	switch {
	case fnErr != nil:
		return fnErr
	case res.err != nil:
		if errors.Is(res.err, context.Canceled) || errors.Is(res.err, context.DeadlineExceeded) {
			return nil
		}
		return &Error{Op: "events", ID: id, Msg: res.err.Error(), Status: -1, err: res.err}
	case res.status != 0 && ctx.Err() == nil:
		msg := logError(log.bytes(maxOutput))
		if msg == "" {
			msg = fmt.Sprintf("exit status %d", res.status)
		}
		return &Error{Op: "events", ID: id, Msg: msg, Status: res.status, kind: r.classify("events", id, msg)}
	}
	return nil
}

// Update changes the resource limits of container id, passing resources
// as JSON on the runtime's stdin (`update --resources -`).
func (r *Runtime) Update(ctx context.Context, id string, resources *specs.LinuxResources) error {
	data, err := json.Marshal(resources)
	if err != nil {
		return fmt.Errorf("runtime update %s: encode resources: %w", id, err)
	}
	in, err := newMemfd("resources.json")
	if err != nil {
		return err
	}
	defer in.close()
	if _, err := in.f.WriteAt(data, 0); err != nil {
		return fmt.Errorf("runtime update %s: %w", id, err)
	}
	_, err = r.run(ctx, id, []string{"update", "--resources", "-", id}, &procIO{stdin: in.f})
	return err
}

// Version returns the first line of `--version` ("runc version 1.1.5").
func (r *Runtime) Version(ctx context.Context) (string, error) {
	out, err := r.run(ctx, "", []string{"--version"}, nil)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line, nil
}
