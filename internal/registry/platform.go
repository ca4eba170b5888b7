package registry

import (
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// NormalizePlatform fills in and canonicalises a platform the way docker
// (through containerd's platforms package) does before comparing: os
// defaults to linux and architecture to this machine's; aliases become
// the Go names (x86_64 -> amd64, aarch64 -> arm64, armhf -> arm/v7);
// arm64 without a variant is v8, arm is v7; amd64's v1 is no variant.
// os.version and os.features are kept but matching ignores them on
// Linux.
func NormalizePlatform(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.OS == "macos" {
		p.OS = "darwin"
	}
	arch, variant := strings.ToLower(p.Architecture), strings.ToLower(p.Variant)
	if arch == "" {
		arch = runtime.GOARCH
	}
	if variant != "" && variant[0] != 'v' && strings.Trim(variant, "0123456789") == "" {
		variant = "v" + variant // "8" -> "v8", as in "arm64/8"
	}
	switch arch {
	case "i386", "i486", "i586", "i686", "x86":
		arch, variant = "386", ""
	case "x86_64", "x86-64", "amd64":
		arch = "amd64"
		if variant == "v1" {
			variant = ""
		}
	case "aarch64", "arm64":
		arch = "arm64"
		if variant == "" || variant == "8" {
			variant = "v8"
		}
	case "armhf":
		arch, variant = "arm", "v7"
	case "armel":
		arch, variant = "arm", "v6"
	case "arm":
		if variant == "" {
			variant = "v7"
		}
	}
	p.Architecture, p.Variant = arch, variant
	return p
}

// compatibleVariants lists, best first, the variants of an architecture
// that run where want does: an arm v8 machine runs v7, v6 and v5 code,
// an amd64 v3 machine v2 and plain amd64. Other architectures take only
// their own variant.
func compatibleVariants(want ocispec.Platform) []string {
	switch want.Architecture {
	case "arm":
		all := []string{"v8", "v7", "v6", "v5"}
		for i, v := range all {
			if v == want.Variant {
				return all[i:]
			}
		}
	case "amd64":
		all := []string{"v4", "v3", "v2", ""}
		for i, v := range all {
			if v == want.Variant {
				return all[i:]
			}
		}
	}
	return []string{want.Variant}
}

// matchRank is the rank of have for want: 0 for an exact match, higher
// for an older compatible variant, -1 for no match.
func matchRank(want, have ocispec.Platform) int {
	want, have = NormalizePlatform(want), NormalizePlatform(have)
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return -1
	}
	for i, v := range compatibleVariants(want) {
		if v == have.Variant {
			return i
		}
	}
	return -1
}

// pickManifest returns the index of the entry of manifests best matching
// want (the exact variant before older ones, then index order), or -1.
// Entries without a platform are not runnable images (attestations,
// signatures) and never match.
func pickManifest(manifests []ocispec.Descriptor, want ocispec.Platform) int {
	best, bestRank := -1, 0
	for i, m := range manifests {
		if m.Platform == nil || !isManifestType(m.MediaType) {
			continue
		}
		r := matchRank(want, *m.Platform)
		if r >= 0 && (best < 0 || r < bestRank) {
			best, bestRank = i, r
		}
	}
	return best
}

// FormatPlatform writes a platform as docker does: "linux/arm64/v8".
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// availablePlatforms lists the runnable platforms of an index, for the
// message of ErrNoMatchingPlatform; attestation entries ("unknown/unknown")
// are left out.
func availablePlatforms(manifests []ocispec.Descriptor) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" || !isManifestType(m.MediaType) {
			continue
		}
		s := FormatPlatform(*m.Platform)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
