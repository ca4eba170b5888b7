//go:build cgo

package seccomp

import (
	"fmt"
	"sort"

	"github.com/opencontainers/runtime-spec/specs-go/features"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Version is the version of the libseccomp linked in, "2.5.4" for example;
// `features` reports it as the io.github.seccomp.libseccomp.version
// annotation, as runc does.
func Version() string {
	major, minor, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", major, minor, micro)
}

// Features describes what Compile accepts, for the `features` command:
// every action and operator of the spec, the architectures the linked
// libseccomp can generate code for, the flags the spec may name and the
// subset of them this kernel accepts.
func Features() *features.Seccomp {
	enabled := true
	return &features.Seccomp{
		Enabled:        &enabled,
		Actions:        sortedKeys(actions),
		Operators:      sortedKeys(operators),
		Archs:          supportedArchs(),
		KnownFlags:     knownFlags(),
		SupportedFlags: supportedFlags(),
	}
}

// supportedArchs lists the spec architectures the linked libseccomp can
// generate code for. libseccomp-golang names them all, so the C library is
// asked: each is added alone to a scratch filter whose native architecture
// was removed, since libseccomp refuses to mix byte orders in one filter.
func supportedArchs() []string {
	var out []string
	for name, a := range arches {
		if archKnown(a) {
			out = append(out, string(name))
		}
	}
	sort.Strings(out)
	return out
}

func archKnown(a libseccomp.ScmpArch) bool {
	ctx, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		return false
	}
	defer ctx.Release()
	native, err := libseccomp.GetNativeArch()
	if err != nil || ctx.RemoveArch(native) != nil {
		return false
	}
	return ctx.AddArch(a) == nil
}

func sortedKeys[K ~string, V any](m map[K]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, string(k))
	}
	sort.Strings(out)
	return out
}
