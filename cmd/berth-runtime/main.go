// Command berth-runtime is an OCI runtime with runc's command line.
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
