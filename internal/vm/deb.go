package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// run runs a command and returns its stdout; a failure carries the command
// line and its stderr, which is where apt, dpkg and debootstrap say why.
func run(ctx context.Context, dir string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := bytes.TrimSpace(stderr.Bytes())
		if len(msg) > 4096 {
			msg = msg[len(msg)-4096:]
		}
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// aptDownload fetches one package (name or name=version) into dir and
// returns the .deb's path. As root apt downloads as the _apt user, which
// cannot write to a private directory of ours: download as ourselves.
func aptDownload(ctx context.Context, dir, spec string) (string, error) {
	before, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if _, err := run(ctx, dir, "apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", spec); err != nil {
		return "", fmt.Errorf("download %s: %w", spec, err)
	}
	after, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	for _, f := range after {
		if !slices.Contains(before, f) {
			return f, nil
		}
	}
	return "", fmt.Errorf("download %s: apt-get left no new .deb in %s", spec, dir)
}

// findDeb returns a cached .deb of package name: apt's archive cache, then
// debs (berth's own), and otherwise downloads it into debs. Of several
// cached versions the lexically last wins, so the choice is stable.
func findDeb(ctx context.Context, debs, name string) (string, error) {
	for _, dir := range []string{"/var/cache/apt/archives", debs} {
		if m, _ := filepath.Glob(filepath.Join(dir, name+"_*.deb")); len(m) > 0 {
			slices.Sort(m)
			return m[len(m)-1], nil
		}
	}
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return "", fmt.Errorf("create deb cache: %w", err)
	}
	tmp, err := os.MkdirTemp(debs, ".tmp-")
	if err != nil {
		return "", fmt.Errorf("create download directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	f, err := aptDownload(ctx, tmp, name)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(debs, filepath.Base(f))
	if err := os.Rename(f, dst); err != nil {
		return "", fmt.Errorf("store %s: %w", filepath.Base(f), err)
	}
	return dst, nil
}

// kernelDependsRE matches the metapackage's dependency on the real kernel
// package, whose name carries the ABI: "linux-image-6.1.0-56-amd64 (= 6.1.192-2)".
var kernelDependsRE = regexp.MustCompile(`^(linux-image-[0-9][^ ,]*)(?: \(= ([^)]+)\))?$`)

// parseKernelDepends finds, in the apt-cache show output of a kernel
// metapackage (linux-image-amd64), the real kernel package and the version
// it is pinned to.
func parseKernelDepends(control []byte) (pkg, version string, err error) {
	sc := bufio.NewScanner(bytes.NewReader(control))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "Depends:")
		if !ok {
			continue
		}
		for _, dep := range strings.Split(line, ",") {
			// An alternative ("a | b") names the preferred package first.
			dep, _, _ = strings.Cut(dep, "|")
			if m := kernelDependsRE.FindStringSubmatch(strings.TrimSpace(dep)); m != nil {
				return m[1], m[2], nil
			}
		}
		break
	}
	return "", "", errors.New("no linux-image-<version> dependency")
}

// resolveKernelPackage asks apt's package lists (no network) which real
// kernel package the metapackage meta stands for.
func resolveKernelPackage(ctx context.Context, meta string) (pkg, version string, err error) {
	out, err := run(ctx, "", "apt-cache", "show", "--no-all-versions", meta)
	if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", meta, err)
	}
	pkg, version, err = parseKernelDepends(out)
	if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", meta, err)
	}
	return pkg, version, nil
}

// DebianMirror returns the URI apt uses for the Debian archive (not the
// security archive) of suite, read from the apt sources under root
// ("/" for the host): the mirror debootstrap must use on machines that only
// reach a configured one. It reads one-line sources.list files and deb822
// .sources files.
func DebianMirror(root, suite string) (string, error) {
	files := []string{filepath.Join(root, "etc/apt/sources.list")}
	for _, pat := range []string{"*.list", "*.sources"} {
		m, _ := filepath.Glob(filepath.Join(root, "etc/apt/sources.list.d", pat))
		files = append(files, m...)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var uri string
		if strings.HasSuffix(f, ".sources") {
			uri = mirrorFromDeb822(data, suite)
		} else {
			uri = mirrorFromList(data, suite)
		}
		if uri != "" {
			return uri, nil
		}
	}
	return "", fmt.Errorf("find a Debian mirror for %s in %s/etc/apt", suite, strings.TrimSuffix(root, "/"))
}

// mirrorFromList reads "deb [opts] URI SUITE COMPONENTS..." lines.
func mirrorFromList(data []byte, suite string) string {
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if len(f) > 0 && strings.HasPrefix(f[0], "[") {
			// Options run up to the field that ends with "]".
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 && f[1] == suite && slices.Contains(f[2:], "main") {
			return f[0]
		}
	}
	return ""
}

// mirrorFromDeb822 reads stanzas of Types/URIs/Suites/Components fields.
func mirrorFromDeb822(data []byte, suite string) string {
	for _, stanza := range strings.Split(string(data), "\n\n") {
		fields := map[string][]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok || strings.HasPrefix(k, " ") {
				continue
			}
			fields[strings.ToLower(k)] = strings.Fields(v)
		}
		if slices.Contains(fields["types"], "deb") && slices.Contains(fields["suites"], suite) &&
			slices.Contains(fields["components"], "main") && len(fields["uris"]) > 0 {
			return fields["uris"][0]
		}
	}
	return ""
}
