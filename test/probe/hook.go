package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/test/probe/report"
)

// cmdHook records one OCI hook invocation: args are OUTFILE [EXIT [SLEEP]].
// The optional exit status and delay let tests check how the runtime
// handles failing hooks and hook timeouts.
func cmdHook(args []string) int {
	out := args[0]
	status := 0
	var delay time.Duration
	if len(args) >= 2 {
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 0 || n > 255 {
			fmt.Fprintf(stderr, "probe: hook exit status %q is not 0-255\n", args[1])
			return usage()
		}
		status = n
	}
	if len(args) == 3 {
		d, ok := parseSeconds(args[2])
		if !ok {
			fmt.Fprintf(stderr, "probe: bad duration %q\n", args[2])
			return usage()
		}
		delay = d
	}

	state, err := io.ReadAll(os.Stdin)
	if err != nil {
		return fail(fmt.Errorf("read state from stdin: %w", err))
	}
	rec := report.Hook{
		Argv:   os.Args,
		Env:    os.Environ(),
		TimeNS: time.Now().UnixNano(),
	}
	if len(state) > 0 {
		if !json.Valid(state) {
			return fail(fmt.Errorf("state on stdin is not JSON: %q", state))
		}
		rec.State = json.RawMessage(state)
	} else {
		rec.State = json.RawMessage("null")
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fail(fmt.Errorf("encode hook record: %w", err))
	}
	line = append(line, '\n')
	if err := appendLine(out, line); err != nil {
		return fail(err)
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	return status
}

// appendLine appends line with one write(2) under an exclusive flock, so
// hooks running at the same time cannot interleave their records.
func appendLine(path string, line []byte) error {
	f, err := openFile(path, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	return nil
}
