// Command berth is berth's command line, with docker's verbs and flags; it
// talks to berthd and starts it when needed.
package main

import (
	"os"

	"github.com/berth-project/berth/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
