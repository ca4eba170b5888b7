//go:build cgo

package main

import (
	"path/filepath"

	"github.com/berth-project/berth/internal/runtimeclient"
	"github.com/berth-project/berth/internal/runtimeclient/inprocess"
	"github.com/berth-project/berth/internal/shim"
)

// inProcess returns the in-process lifecycle for berth-runtime, and nil
// for any other runtime (runc, crun), which is executed. berth-runtime is
// known by its name, as berthd knows it: the in-process code is this
// binary's, so the binary must come from the same build (the init refuses
// a parent that speaks another sync protocol).
func inProcess(runtimePath string) func(*runtimeclient.Runtime, func(string)) shim.Runtime {
	if filepath.Base(runtimePath) != "berth-runtime" {
		return nil
	}
	return func(cli *runtimeclient.Runtime, warn func(string)) shim.Runtime {
		return &inprocess.Runtime{CLI: cli, Warn: warn}
	}
}

// warm readies the in-process runtime while a standby waits.
func warm() { inprocess.Warm() }
