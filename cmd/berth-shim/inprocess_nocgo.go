//go:build !cgo

package main

import (
	"github.com/berth-project/berth/internal/runtimeclient"
	"github.com/berth-project/berth/internal/shim"
)

// inProcess is nil without cgo: berth-runtime's code needs it (libseccomp,
// the nsenter constructor), so the runtime is always executed.
func inProcess(string) func(*runtimeclient.Runtime, func(string)) shim.Runtime { return nil }

// warm has nothing to ready without the in-process runtime.
func warm() {}
