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

	"github.com/berth-project/berth/internal/linux/userns"
	"github.com/berth-project/berth/internal/runtime/cli"
)

func main() {
	userns.Hold()
	os.Exit(cli.Main(os.Args))
}
