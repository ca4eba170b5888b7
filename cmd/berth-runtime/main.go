// Command berth-runtime is an OCI runtime with runc's command line.
//
// The runtime is started several times per container and lives for
// milliseconds: the Go runtime's reading of the cgroup CPU quota at start
// (and its re-reading in the background) is pure start-up cost here.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"os"
	goruntime "runtime"
	"runtime/debug"

	"github.com/berth-project/berth/internal/linux/userns"
	"github.com/berth-project/berth/internal/runtime/cli"
)

func main() {
	userns.Hold()
	// A runtime command lives for milliseconds and does one thing at a
	// time: no collector cycles (a soft limit still bounds a long
	// foreground run), and one P, so idle threads do not spin looking for
	// work. Blocking syscalls still get threads of their own.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(64 << 20)
	goruntime.GOMAXPROCS(1)
	os.Exit(cli.Main(os.Args))
}
