package registry

import (
	"runtime"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func plat(os, arch, variant string) ocispec.Platform {
	return ocispec.Platform{OS: os, Architecture: arch, Variant: variant}
}

func TestNormalizePlatform(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want ocispec.Platform }{
		{plat("", "", ""), NormalizePlatform(plat("linux", runtime.GOARCH, ""))},
		{plat("linux", "x86_64", ""), plat("linux", "amd64", "")},
		{plat("linux", "amd64", "v1"), plat("linux", "amd64", "")},
		{plat("linux", "amd64", "v3"), plat("linux", "amd64", "v3")},
		{plat("linux", "aarch64", ""), plat("linux", "arm64", "v8")},
		{plat("linux", "arm64", "8"), plat("linux", "arm64", "v8")},
		{plat("Linux", "arm", ""), plat("linux", "arm", "v7")},
		{plat("linux", "armhf", ""), plat("linux", "arm", "v7")},
		{plat("linux", "armel", ""), plat("linux", "arm", "v6")},
		{plat("linux", "i686", ""), plat("linux", "386", "")},
		{plat("linux", "s390x", ""), plat("linux", "s390x", "")},
	} {
		if got := NormalizePlatform(tc.in); got.OS != tc.want.OS || got.Architecture != tc.want.Architecture || got.Variant != tc.want.Variant {
			t.Errorf("NormalizePlatform(%+v) = %s, want %s", tc.in, FormatPlatform(got), FormatPlatform(tc.want))
		}
	}
}

func entry(p ocispec.Platform) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Platform: &p}
}

func TestPickManifest(t *testing.T) {
	t.Parallel()
	windows := plat("windows", "amd64", "")
	windows.OSVersion = "10.0.17763.1"
	linuxWithVersion := plat("linux", "ppc64le", "")
	linuxWithVersion.OSVersion = "5.10"
	index := []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest}, // no platform: never picked
		entry(windows),
		entry(plat("linux", "amd64", "")),
		entry(plat("linux", "arm64", "")),
		entry(plat("linux", "arm", "v6")),
		entry(plat("linux", "arm", "v7")),
		entry(plat("unknown", "unknown", "")), // an attestation
		entry(linuxWithVersion),
		{MediaType: ocispec.MediaTypeImageIndex, Platform: &ocispec.Platform{OS: "linux", Architecture: "riscv64"}},
	}
	for _, tc := range []struct {
		want ocispec.Platform
		pick int
	}{
		{plat("linux", "amd64", ""), 2},
		{plat("", "x86_64", ""), 2},
		{plat("linux", "arm64", "v8"), 3},    // entry has no variant: arm64 means v8
		{plat("linux", "aarch64", ""), 3},    // alias
		{plat("linux", "arm", "v7"), 5},      // exact before the compatible v6
		{plat("linux", "arm", "v8"), 5},      // best compatible
		{plat("linux", "arm", "v6"), 4},      // v7 would not run
		{plat("linux", "arm", "v5"), -1},     // nothing old enough
		{plat("linux", "amd64", "v3"), 2},    // plain amd64 runs on v3
		{plat("windows", "amd64", ""), 1},    // os.version ignored
		{plat("linux", "ppc64le", ""), 7},    // os.version ignored on linux
		{plat("linux", "s390x", ""), -1},     // absent
		{plat("linux", "riscv64", ""), -1},   // nested index: not a manifest
		{plat("unknown", "unknown", ""), -1}, // attestations are still manifests, but...
	} {
		got := pickManifest(index, tc.want)
		if tc.want.OS == "unknown" {
			// ...a caller asking for unknown/unknown gets the attestation;
			// only the list of available platforms hides it.
			if got != 6 {
				t.Errorf("pick unknown/unknown = %d", got)
			}
			continue
		}
		if got != tc.pick {
			t.Errorf("pick %s = %d, want %d", FormatPlatform(tc.want), got, tc.pick)
		}
	}
	avail := availablePlatforms(index)
	want := []string{"windows/amd64", "linux/amd64", "linux/arm64", "linux/arm/v6", "linux/arm/v7", "linux/ppc64le"}
	if len(avail) != len(want) {
		t.Fatalf("available = %v, want %v", avail, want)
	}
	for i := range want {
		if avail[i] != want[i] {
			t.Fatalf("available = %v, want %v", avail, want)
		}
	}
}
