// Go 1.25+ keeps the cgroup CPU quota files open to size GOMAXPROCS; the
// probe reports descriptors, and those would look as if the runtime leaked
// them.
//
//go:debug containermaxprocs=0

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// stderr is where messages go; a variable so tests can silence usage text.
var stderr io.Writer = os.Stderr

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes one sub-command and returns the exit status.
func run(args []string) int {
	if len(args) == 0 {
		return cmdReport()
	}
	cmd, rest := args[0], args[1:]
	switch {
	case cmd == "report" && len(rest) == 0:
		return cmdReport()
	case cmd == "exit" && len(rest) == 1:
		return cmdExit(rest[0])
	case cmd == "sleep" && len(rest) == 1:
		return cmdSleep(rest[0])
	case cmd == "cat" && len(rest) == 1:
		return cmdCat(rest[0])
	case cmd == "write" && len(rest) == 2:
		return cmdWrite(rest[0], rest[1])
	case cmd == "ls" && len(rest) == 1:
		return cmdLs(rest[0])
	case cmd == "stat" && len(rest) == 1:
		return cmdStat(rest[0])
	case cmd == "spin" && len(rest) == 0:
		return cmdSpin()
	case cmd == "tty" && len(rest) == 0:
		return cmdTTY()
	case cmd == "hook" && len(rest) >= 1 && len(rest) <= 3:
		return cmdHook(rest)
	case cmd == "fork" && len(rest) == 1:
		return cmdFork(rest[0])
	case cmd == "mknod" && len(rest) == 1:
		return cmdMknod(rest[0])
	case cmd == "open" && (len(rest) == 1 || len(rest) == 2):
		mode := "r"
		if len(rest) == 2 {
			mode = rest[1]
		}
		return cmdOpen(rest[0], mode)
	}
	return usage()
}

func usage() int {
	fmt.Fprint(stderr, `usage: probe [report]
       probe exit N | sleep SECONDS | cat PATH | write PATH CONTENT | ls PATH
       probe stat PATH | spin | tty | hook OUTFILE [EXIT [SLEEP]] | fork N
       probe mknod PATH | open PATH [r|w|rw]
`)
	return 2
}

// printJSON writes v as one line of JSON on stdout.
func printJSON(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(stderr, "probe: encode json: %v\n", err)
		return 1
	}
	b = append(b, '\n')
	if _, err := os.Stdout.Write(b); err != nil {
		fmt.Fprintf(stderr, "probe: write stdout: %v\n", err)
		return 1
	}
	return 0
}

// fail prints a message on stderr and returns status 1.
func fail(err error) int {
	fmt.Fprintf(stderr, "probe: %v\n", err)
	return 1
}
