//go:build !cgo

package seccomp

import (
	"errors"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// errNoCgo is what a build without cgo, hence without libseccomp, answers.
var errNoCgo = errors.New("compile seccomp filter: berth was built without cgo, so without libseccomp")

// Compile fails: generating the program needs libseccomp.
func Compile(s *specs.LinuxSeccomp) (*Filter, error) { return nil, errNoCgo }

// Version is empty: no libseccomp is linked in.
func Version() string { return "" }

// Features reports seccomp as disabled.
func Features() *features.Seccomp {
	enabled := false
	return &features.Seccomp{Enabled: &enabled}
}
