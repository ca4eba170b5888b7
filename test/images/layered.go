package images

import (
	"archive/tar"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/test/fixture"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// layeredVersion changes whenever the Layered recipe changes.
const layeredVersion = "layered-1"

// Names of the Layered image in its index.json.
const (
	LayeredName = "docker.io/berth-test/layered:latest"
	layeredTag  = "latest"
)

// layeredTime is the mtime of every entry of Layered's own layers, and
// the first of its history dates.
var layeredTime = time.Date(2024, 2, 1, 10, 0, 0, 0, time.UTC)

// Names in Layered that USTAR cannot hold: one longer than its 100-byte
// name field with no "/" to split at, one not ASCII.
const (
	longName    = "this-file-name-is-longer-than-the-hundred-bytes-a-ustar-header-can-hold-so-the-layer-needs-a-pax-path-record.txt"
	unicodeName = "héllo wörld – 日本語.txt"
)

// sparseSize is the size of /srv/sparse: zeros but for its last bytes.
const sparseSize = 1 << 20

var sparseTail = "the end\n"

func sparseContent() string {
	return strings.Repeat("\x00", sparseSize-len(sparseTail)) + sparseTail
}

// capNetBindService is a security.capability value: struct vfs_cap_data
// of revision 2 (linux/capability.h), little-endian, with
// CAP_NET_BIND_SERVICE (10) permitted and the effective flag set: what
// `setcap cap_net_bind_service+ep` writes.
func capNetBindService() string {
	const (
		vfsCapRevision2      = 0x02000000
		vfsCapFlagsEffective = 0x000001
	)
	words := []uint32{
		vfsCapRevision2 | vfsCapFlagsEffective,
		1 << unix.CAP_NET_BIND_SERVICE, 0, // permitted, inheritable of caps 0-31
		0, 0, // of caps 32-63
	}
	b := make([]byte, 0, 4*len(words))
	for _, w := range words {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return string(b)
}

// layeredLayer is one layer of Layered above busybox, with the history
// line that made it.
type layeredLayer struct {
	createdBy string
	comp      compression
	entries   []entry
}

// layeredLayers is the recipe of Layered's layers above busybox. Each
// layer repeats the parent directories of what it adds, as docker and
// buildkit write layers. LayeredExpect states, independently, what the
// layers must merge to.
func layeredLayers() []layeredLayer {
	return []layeredLayer{{
		createdBy: "COPY base/ / # buildkit",
		comp:      gzipped,
		entries: []entry{
			dirEntry("etc", 0o755),
			dirEntry("etc/app", 0o755),
			fileEntry("etc/app/config.txt", 0o644, "mode=v1\n"),
			fileEntry("etc/app/removed.txt", 0o644, "a later layer deletes this file\n"),
			dirEntry("opt", 0o755),
			dirEntry("opt/gone", 0o755),
			fileEntry("opt/gone/file", 0o644, "gone\n"),
			dirEntry("opt/gone/sub", 0o755),
			fileEntry("opt/gone/sub/deeper", 0o644, "gone too\n"),
			dirEntry("opt/kind", 0o755),
			fileEntry("opt/kind/inner", 0o644, "a later layer puts a file where this directory is\n"),
			dirEntry("usr", 0o755),
			dirEntry("usr/share", 0o755),
			fileEntry("usr/share/recreate.txt", 0o644, "before the whiteout\n"),
			dirEntry("var", 0o755),
			dirEntry("var/lib", 0o755),
			dirEntry("var/lib/opaque", 0o755),
			fileEntry("var/lib/opaque/a.txt", 0o644, "hidden by the opaque whiteout\n"),
			fileEntry("var/lib/opaque/b.txt", 0o644, "hidden as well\n"),
			dirEntry("var/lib/opaque/sub", 0o755),
			fileEntry("var/lib/opaque/sub/c.txt", 0o644, "and this\n"),
		},
	}, {
		createdBy: "RUN /bin/sh -c rm /etc/app/removed.txt /usr/share/recreate.txt && rm -r /opt/gone && mkdir -p /links/sub && ln ... # buildkit",
		comp:      gzipped,
		entries: []entry{
			dirEntry("etc", 0o755),
			dirEntry("etc/app", 0o755),
			whiteoutEntry("etc/app", "removed.txt"),
			dirEntry("links", 0o755),
			symlinkEntry("links/abs", "/etc/app/config.txt"),
			symlinkEntry("links/dangling", "/nonexistent/target"),
			symlinkEntry("links/dir", "../var/lib"),
			fileEntry("links/hard-a", 0o644, "one inode, three names\n"),
			hardlinkEntry("links/hard-b", "links/hard-a"),
			symlinkEntry("links/rel", "../etc/app/config.txt"),
			dirEntry("links/sub", 0o755),
			hardlinkEntry("links/sub/hard-c", "links/hard-a"),
			// Climbs above the root: stored verbatim, resolved inside
			// the container to /etc/passwd, never followed on the host.
			symlinkEntry("links/up", "../../../../../etc/passwd"),
			dirEntry("opt", 0o755),
			whiteoutEntry("opt", "gone"),
			dirEntry("usr", 0o755),
			dirEntry("usr/share", 0o755),
			whiteoutEntry("usr/share", "recreate.txt"),
		},
	}, {
		createdBy: "COPY --link opaque/ / # buildkit",
		comp:      zstded,
		entries: []entry{
			dirEntry("usr", 0o755),
			dirEntry("usr/share", 0o755),
			fileEntry("usr/share/recreate.txt", 0o600, "after the whiteout\n"),
			dirEntry("var", 0o755),
			dirEntry("var/lib", 0o755),
			dirEntry("var/lib/opaque", 0o750),
			opaqueEntry("var/lib/opaque"),
			fileEntry("var/lib/opaque/new.txt", 0o644, "only this survives the opaque whiteout\n"),
		},
	}, {
		createdBy: "RUN /bin/sh -c mknod /dev/mynull c 1 3 && mkfifo /srv/fifo && setcap cap_net_bind_service+ep /bin/netbind && ... # buildkit",
		comp:      gzipped,
		entries: []entry{
			dirEntry("bin", 0o755),
			fileEntry("bin/netbind", 0o755, "#!/bin/sh\necho may bind ports below 1024\n").
				xattr("security.capability", capNetBindService()).
				xattr("user.berth.note", "set by the layer"),
			dirEntry("dev", 0o755),
			charEntry("dev/mynull", 0o666, 1, 3),
			dirEntry("etc", 0o755),
			dirEntry("etc/app", 0o755),
			fileEntry("etc/app/config.txt", 0o640, "mode=v2\n").owned(0, fixture.StaffGID),
			dirEntry("opt", 0o755),
			fileEntry("opt/kind", 0o644, "a file where a directory was\n"),
			dirEntry("srv", 0o755),
			fileEntry("srv/empty", 0o644, ""),
			fifoEntry("srv/fifo", 0o620),
			dirEntry("srv/long", 0o755),
			fileEntry("srv/long/"+longName, 0o644, "long\n"),
			dirEntry("srv/owned", 0o750).owned(fixture.BerthUID, fixture.BerthGID),
			fileEntry("srv/owned/by-berth", 0o640, "owned by berth\n").owned(fixture.BerthUID, fixture.BerthGID),
			// Ids no /etc/passwd or /etc/group of the image names.
			fileEntry("srv/owned/unnamed-ids", 0o604, "4242:4343\n").owned(4242, 4343),
			dirEntry("srv/private", 0o700),
			fileEntry("srv/private/secret", 0o600, "secret\n"),
			dirEntry("srv/shared", 0o1777),
			fileEntry("srv/sparse", 0o644, sparseContent()),
			dirEntry("srv/unicode", 0o755),
			fileEntry("srv/unicode/"+unicodeName, 0o644, "unicode\n"),
			dirEntry("usr", 0o755),
			dirEntry("usr/local", 0o755),
			dirEntry("usr/local/bin", 0o755),
			fileEntry("usr/local/bin/setgid-tool", 0o2755, "#!/bin/sh\nid -g\n").owned(0, fixture.StaffGID),
			fileEntry("usr/local/bin/setuid-tool", 0o4755, "#!/bin/sh\nid -u\n"),
		},
	}, {
		createdBy: "COPY app/ home/ / # buildkit",
		comp:      gzipped,
		entries: []entry{
			dirEntry("app", 0o755),
			fileEntry("app/run.sh", 0o755, "#!/bin/sh\necho \"layered: $*\"\n"),
			dirEntry("data", 0o755),
			dirEntry("home", 0o755),
			dirEntry("home/berth", 0o755).owned(fixture.BerthUID, fixture.BerthGID),
			fileEntry("home/berth/.profile", 0o644, "export APP_MODE=test\n").owned(fixture.BerthUID, fixture.BerthGID),
		},
	}}
}

var layeredMu sync.Mutex

// Layered returns the OCI layout of a six-layer image: busybox's layer,
// then five layers of its own (the third zstd-compressed, the others
// gzip) whose merged view LayeredExpect describes: whiteouts of a file
// and of a directory, an opaque directory, a file re-created after its
// whiteout, a directory replaced by a file, hardlinks, symlinks (relative,
// absolute, dangling, climbing above /), xattrs with a file capability,
// non-root owners, setuid and setgid, a sticky and a 0700 directory, a
// fifo, a character device, a 1 MiB file of zeros, an empty file, a long
// and a non-ASCII name.
//
// Its config is a Docker one (DockerOCIImage): Env, Entrypoint
// ["/app/run.sh"], Cmd ["hello", "world"], WorkingDir /app, User berth,
// ExposedPorts, Volumes, StopSignal, Labels, OnBuild, a Healthcheck, and
// a history of 17 steps of which 6 made layers. index.json names it
// "latest" and LayeredName. Cached and shared: do not modify.
func Layered(t testing.TB) string {
	t.Helper()
	base := Busybox(t)
	layeredMu.Lock()
	defer layeredMu.Unlock()
	dir, err := buildLayered(base)
	check(t, "layered image", err)
	return filepath.Join(dir, "layout")
}

func buildLayered(busybox string) (string, error) {
	base, err := readBase(busybox)
	if err != nil {
		return "", fmt.Errorf("read busybox image: %w", err)
	}
	return cached("layered", cacheKey(layeredVersion, base.desc.Digest.String()), func(dir string) error {
		return writeLayered(filepath.Join(dir, "layout"), base)
	})
}

// writeLayered writes Layered on top of base into the new directory dir.
func writeLayered(dir string, base *baseImage) error {
	l, err := newLayout(dir)
	if err != nil {
		return err
	}
	if len(base.manifest.Layers) != 1 || len(base.config.History) != 1 {
		return fmt.Errorf("busybox image %s: %d layers and %d history entries, want 1 and 1",
			base.desc.Digest, len(base.manifest.Layers), len(base.config.History))
	}
	if err := l.copyBlob(base.layout, base.manifest.Layers[0]); err != nil {
		return err
	}
	layers := []ocispec.Descriptor{base.manifest.Layers[0]}
	diffIDs := []digest.Digest{base.config.RootFS.DiffIDs[0]}
	history := []ocispec.History{base.config.History[0]}

	// Each step is a minute after the one before.
	step := 0
	at := func() *time.Time {
		t := layeredTime.Add(time.Duration(step) * time.Minute)
		step++
		return &t
	}
	const comment = "buildkit.dockerfile.v0"
	empty := func(createdBy string) {
		history = append(history, ocispec.History{Created: at(), CreatedBy: createdBy, Comment: comment, EmptyLayer: true})
	}
	withLayer := func(ll layeredLayer) error {
		mediaType := ocispec.MediaTypeImageLayerGzip
		if ll.comp == zstded {
			mediaType = ocispec.MediaTypeImageLayerZstd
		}
		desc, diffID, err := l.layer(mediaType, ll.comp, func(tw *tar.Writer) error {
			return writeEntries(tw, ll.entries, layeredTime)
		})
		if err != nil {
			return err
		}
		layers = append(layers, desc)
		diffIDs = append(diffIDs, diffID)
		history = append(history, ocispec.History{Created: at(), CreatedBy: ll.createdBy, Comment: comment})
		return nil
	}

	recipe := layeredLayers()
	empty("ENV APP_MODE=test WITH_EQUALS=a=b=c EMPTY=")
	for _, ll := range recipe[:4] {
		if err := withLayer(ll); err != nil {
			return err
		}
	}
	empty("LABEL org.opencontainers.image.title=berth layered test image ...")
	if err := withLayer(recipe[4]); err != nil {
		return err
	}
	for _, s := range []string{
		"WORKDIR /app",
		"USER berth",
		"EXPOSE map[8080/tcp:{} 9090/udp:{}]",
		"VOLUME [/data]",
		`HEALTHCHECK &{["CMD-SHELL" "test -x /app/run.sh || exit 1"] "30s" "5s" "10s" "2s" '\x03'}`,
		"STOPSIGNAL SIGQUIT",
		"ONBUILD RUN echo built on layered",
		`ENTRYPOINT ["/app/run.sh"]`,
		`CMD ["hello" "world"]`,
	} {
		empty(s)
	}
	created := history[len(history)-1].Created

	platform := ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"}
	config := dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created:  created,
			Author:   "berth tests",
			Platform: platform,
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
			History:  history,
		},
		Config: dockerspec.DockerOCIImageConfig{
			ImageConfig: ocispec.ImageConfig{
				User:         "berth",
				ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9090/udp": {}},
				Env:          []string{fixture.DefaultPath, "APP_MODE=test", "WITH_EQUALS=a=b=c", "EMPTY="},
				Entrypoint:   []string{"/app/run.sh"},
				Cmd:          []string{"hello", "world"},
				Volumes:      map[string]struct{}{"/data": {}},
				WorkingDir:   "/app",
				Labels: map[string]string{
					"org.opencontainers.image.title":       "berth layered test image",
					"org.opencontainers.image.description": "layers that exercise every unpacking rule",
					"org.opencontainers.image.version":     "1.0",
					"com.example.empty":                    "",
					"com.example.unicode":                  "héllo",
				},
				StopSignal: "SIGQUIT",
			},
			DockerOCIImageConfigExt: dockerspec.DockerOCIImageConfigExt{
				Healthcheck: &dockerspec.HealthcheckConfig{
					Test:          []string{"CMD-SHELL", "test -x /app/run.sh || exit 1"},
					Interval:      30 * time.Second,
					Timeout:       5 * time.Second,
					StartPeriod:   10 * time.Second,
					StartInterval: 2 * time.Second,
					Retries:       3,
				},
				OnBuild: []string{"RUN echo built on layered"},
			},
		},
	}
	configDesc, err := l.json(ocispec.MediaTypeImageConfig, config)
	if err != nil {
		return err
	}
	manifest := ocispec.Manifest{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    layers,
	}
	desc, err := l.json(ocispec.MediaTypeImageManifest, manifest)
	if err != nil {
		return err
	}
	desc.Platform = &platform
	desc.Annotations = map[string]string{annotationRefName: layeredTag, annotationCtrName: LayeredName}
	return l.finish(desc)
}
