package engine

import (
	"bytes"
	"context"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// Top lists a container's processes as docker's GET
// /containers/{id}/top: the host's ps with psArgs (default "-ef"),
// keeping the rows whose PID the runtime lists for the container.
func (e *Engine) Top(ctx context.Context, ref, psArgs string) (*container.TopResponse, error) {
	c, err := e.lookup(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	running := c.task != nil
	c.mu.Unlock()
	if !running {
		return nil, conflictf("Container %s is not running", c.id)
	}
	pids, err := e.runtimePids(ctx, c)
	if err != nil {
		return nil, err
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	args := strings.Fields(psArgs)
	for _, a := range args {
		if strings.ContainsRune(a, 0) {
			return nil, invalidf("invalid ps arguments %q", psArgs)
		}
	}
	cmd := exec.CommandContext(ctx, "ps", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, invalidf("ps %s: %v: %s", psArgs, err, strings.TrimSpace(stderr.String()))
	}
	return parsePS(out, pids)
}

// parsePS keeps the rows of ps output whose PID column is in pids. The
// last column (the command) may hold spaces: a row is split into as many
// fields as the header has.
func parsePS(out []byte, pids []int) (*container.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) == 0 {
		return nil, invalidf("ps printed nothing")
	}
	titles := strings.Fields(lines[0])
	pidCol := slices.Index(titles, "PID")
	if pidCol < 0 {
		return nil, invalidf("Couldn't find PID field in ps output")
	}
	resp := &container.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, line := range lines[1:] {
		fields := splitFields(line, len(titles))
		if len(fields) <= pidCol {
			continue
		}
		pid, err := strconv.Atoi(fields[pidCol])
		if err != nil {
			return nil, invalidf("unexpected pid %q in ps output", fields[pidCol])
		}
		if slices.Contains(pids, pid) {
			resp.Processes = append(resp.Processes, fields)
		}
	}
	return resp, nil
}

// splitFields splits s on runs of blanks into at most n fields, the last
// keeping the rest of the line.
func splitFields(s string, n int) []string {
	var out []string
	s = strings.TrimLeft(s, " \t")
	for len(out) < n-1 && s != "" {
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			break
		}
		out = append(out, s[:i])
		s = strings.TrimLeft(s[i:], " \t")
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}
