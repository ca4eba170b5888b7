package images

import (
	"archive/tar"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/test/fixture"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestBusybox(t *testing.T) {
	l := checkLayout(t, Busybox(t))
	if len(l.images) != 1 || len(l.images[0].manifest.Layers) != 1 {
		t.Fatalf("busybox: %+v", l)
	}
}

func TestLayered(t *testing.T) {
	dir := Layered(t)
	l := checkLayout(t, dir)
	if l.top.Annotations[ocispec.AnnotationRefName] != "latest" || l.top.Annotations["io.containerd.image.name"] != LayeredName {
		t.Errorf("index.json entry annotations %v", l.top.Annotations)
	}
	img := l.images[0]
	var types []string
	for _, d := range img.manifest.Layers {
		types = append(types, strings.TrimPrefix(d.MediaType, "application/vnd.oci.image.layer.v1."))
	}
	if want := []string{"tar+gzip", "tar+gzip", "tar+gzip", "tar+zstd", "tar+gzip", "tar+gzip"}; !slices.Equal(types, want) {
		t.Errorf("layer media types %v, want %v", types, want)
	}
	bb := checkLayout(t, Busybox(t)).images[0]
	if img.manifest.Layers[0].Digest != bb.manifest.Layers[0].Digest {
		t.Errorf("first layer %s, busybox's is %s", img.manifest.Layers[0].Digest, bb.manifest.Layers[0].Digest)
	}

	c := img.config
	if c.OS != "linux" || c.Architecture != runtime.GOARCH || c.Created == nil || c.Author != "berth tests" {
		t.Errorf("config platform/created/author: %+v", c.Image)
	}
	cc := c.Config
	if cc.User != "berth" || cc.WorkingDir != "/app" || cc.StopSignal != "SIGQUIT" ||
		!slices.Equal(cc.Entrypoint, []string{"/app/run.sh"}) || !slices.Equal(cc.Cmd, []string{"hello", "world"}) ||
		!slices.Contains(cc.Env, "WITH_EQUALS=a=b=c") || !slices.Contains(cc.Env, fixture.DefaultPath) {
		t.Errorf("config: %+v", cc.ImageConfig)
	}
	if _, ok := cc.ExposedPorts["9090/udp"]; !ok || len(cc.ExposedPorts) != 2 {
		t.Errorf("exposed ports %v", cc.ExposedPorts)
	}
	if _, ok := cc.Volumes["/data"]; !ok || len(cc.Labels) != 5 || cc.Labels["com.example.empty"] != "" {
		t.Errorf("volumes %v labels %v", cc.Volumes, cc.Labels)
	}
	if hc := cc.Healthcheck; hc == nil || hc.Retries != 3 || hc.Interval != 30*time.Second || hc.StartInterval != 2*time.Second ||
		!slices.Equal(hc.Test, []string{"CMD-SHELL", "test -x /app/run.sh || exit 1"}) {
		t.Errorf("healthcheck %+v", hc)
	}
	h := c.History
	if len(h) != 17 || h[0].CreatedBy != bb.config.History[0].CreatedBy || !h[1].EmptyLayer || h[2].EmptyLayer ||
		h[len(h)-1].CreatedBy != `CMD ["hello" "world"]` || !h[len(h)-1].Created.Equal(*c.Created) {
		t.Errorf("history %+v", h)
	}
	for i := 1; i < len(h); i++ {
		if !h[i].Created.After(*h[i-1].Created) {
			t.Errorf("history %d created %v, not after %v", i, h[i].Created, h[i-1].Created)
		}
	}

	// What USTAR cannot hold travels as PAX records, and names are
	// relative without "./".
	var sawXattr, sawLong, sawUnicode bool
	for _, d := range img.manifest.Layers[1:] {
		for _, e := range readLayer(t, dir, d) {
			n := e.hdr.Name
			if strings.HasPrefix(n, "/") || strings.HasPrefix(n, "./") || slices.Contains(strings.Split(n, "/"), "..") {
				t.Errorf("layer %s: entry name %q", d.Digest, n)
			}
			if !e.hdr.ModTime.Equal(layeredTime) {
				t.Errorf("%s: mtime %v", n, e.hdr.ModTime)
			}
			if e.hdr.PAXRecords["SCHILY.xattr.security.capability"] == capNetBindService() {
				sawXattr = true
			}
			sawLong = sawLong || e.hdr.PAXRecords["path"] == "srv/long/"+longName
			sawUnicode = sawUnicode || e.hdr.PAXRecords["path"] == "srv/unicode/"+unicodeName
		}
	}
	if !sawXattr || !sawLong || !sawUnicode {
		t.Errorf("PAX records: capability xattr %v, long path %v, non-ASCII path %v", sawXattr, sawLong, sawUnicode)
	}
}

// TestLayeredExpect merges the layers' tar headers the way the image spec
// says (whiteouts hide lower layers only, an opaque marker empties its
// directory below, a non-directory replaces a directory and its tree,
// hardlinks share their target's inode) and checks LayeredExpect against
// the result: the layers mean what LayeredExpect says they mean.
func TestLayeredExpect(t *testing.T) {
	dir := Layered(t)
	img := checkLayout(t, dir).images[0]
	merged := mergeLayers(t, dir, img.manifest.Layers)
	want := LayeredExpect()
	for p, e := range want.Entries {
		n, ok := merged[p]
		if !ok {
			t.Errorf("%s: not in the merged layers", p)
			continue
		}
		checkNode(t, p, n, e, merged)
	}
	for _, p := range want.Absent {
		if _, ok := merged[p]; ok {
			t.Errorf("%s: in the merged layers, should be absent", p)
		}
	}
	for d, names := range want.Listings {
		var got []string
		for p := range merged {
			if filepath.Dir(p) == d {
				got = append(got, filepath.Base(p))
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, names) {
			t.Errorf("%s lists %q, expectation says %q", d, got, names)
		}
	}
	// Every file the image's own layers leave is described.
	for p, n := range merged {
		if _, ok := want.Entries[p]; !ok && n.layer > 0 && n.hdr.Typeflag != tar.TypeDir {
			t.Errorf("%s: in the layers but not in LayeredExpect", p)
		}
	}
}

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }

// node is one path of the merged view of tar headers.
type node struct {
	hdr     *tar.Header
	content []byte
	inode   int // shared by hardlinks
	layer   int // index of the layer it came from
}

func mergeLayers(t *testing.T, dir string, layers []ocispec.Descriptor) map[string]*node {
	t.Helper()
	merged := map[string]*node{}
	removeTree := func(p string) {
		delete(merged, p)
		for q := range merged {
			if strings.HasPrefix(q, p+"/") {
				delete(merged, q)
			}
		}
	}
	inodes := 0
	for li, d := range layers {
		entries := readLayer(t, dir, d)
		// Whiteouts apply to the layers below only: all of them first.
		for _, e := range entries {
			name := strings.TrimSuffix(e.hdr.Name, "/")
			base, parent := filepath.Base(name), filepath.Dir(name)
			switch {
			case base == ".wh..wh..opq":
				for q := range merged {
					if strings.HasPrefix(q, parent+"/") {
						delete(merged, q)
					}
				}
			case strings.HasPrefix(base, ".wh."):
				target := filepath.Join(parent, strings.TrimPrefix(base, ".wh."))
				if _, ok := merged[target]; !ok {
					t.Errorf("layer %s: whiteout %s of %s, which no lower layer has", d.Digest, name, target)
				}
				removeTree(target)
			}
		}
		added := map[string]bool{}
		for _, e := range entries {
			name := strings.TrimSuffix(e.hdr.Name, "/")
			if strings.HasPrefix(filepath.Base(name), ".wh.") {
				continue
			}
			if parent := filepath.Dir(name); parent != "." {
				if p, ok := merged[parent]; !ok || p.hdr.Typeflag != tar.TypeDir {
					t.Errorf("layer %s: %s comes before (or without) its directory", d.Digest, name)
				}
			}
			if old, ok := merged[name]; ok && old.hdr.Typeflag == tar.TypeDir && e.hdr.Typeflag != tar.TypeDir {
				removeTree(name)
			}
			n := &node{hdr: e.hdr, content: e.content, layer: li}
			if e.hdr.Typeflag == tar.TypeLink {
				target, ok := merged[e.hdr.Linkname]
				if !ok || !added[e.hdr.Linkname] {
					t.Errorf("layer %s: hardlink %s to %s, not earlier in the layer", d.Digest, name, e.hdr.Linkname)
					continue
				}
				n = target
			} else {
				inodes++
				n.inode = inodes
			}
			merged[name] = n
			added[name] = true
		}
	}
	return merged
}

func checkNode(t *testing.T, p string, n *node, want Entry, merged map[string]*node) {
	t.Helper()
	h := n.hdr
	kinds := map[byte]Kind{tar.TypeDir: KindDir, tar.TypeReg: KindFile, tar.TypeSymlink: KindSymlink,
		tar.TypeChar: KindChar, tar.TypeBlock: KindBlock, tar.TypeFifo: KindFIFO}
	if kinds[h.Typeflag] != want.Kind {
		t.Errorf("%s: tar type %q, expectation says %s", p, h.Typeflag, want.Kind)
		return
	}
	if want.Kind != KindSymlink && uint32(h.Mode&0o7777) != want.Mode {
		t.Errorf("%s: mode %#o, expectation says %#o", p, h.Mode, want.Mode)
	}
	if h.Uid != want.UID || h.Gid != want.GID {
		t.Errorf("%s: owner %d:%d, expectation says %d:%d", p, h.Uid, h.Gid, want.UID, want.GID)
	}
	if want.Kind == KindFile && (want.Digest != "" || want.Size != 0) {
		if h.Size != want.Size || (want.Digest != "" && digestOf(n.content) != want.Digest) {
			t.Errorf("%s: %d bytes %s, expectation says %d bytes %s", p, h.Size, digestOf(n.content), want.Size, want.Digest)
		}
	}
	if h.Linkname != want.Target && want.Kind == KindSymlink {
		t.Errorf("%s: target %q, expectation says %q", p, h.Linkname, want.Target)
	}
	if uint32(h.Devmajor) != want.Major || uint32(h.Devminor) != want.Minor {
		t.Errorf("%s: device %d:%d, expectation says %d:%d", p, h.Devmajor, h.Devminor, want.Major, want.Minor)
	}
	x := map[string]string{}
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			x[name] = v
		}
	}
	if len(x) != len(want.Xattrs) {
		t.Errorf("%s: xattrs %q, expectation says %q", p, x, want.Xattrs)
	}
	for k, v := range want.Xattrs {
		if x[k] != v {
			t.Errorf("%s: xattr %s %q, expectation says %q", p, k, x[k], v)
		}
	}
	if want.LinkedTo != "" && merged[want.LinkedTo] != n {
		t.Errorf("%s: not the same inode as %s", p, want.LinkedTo)
	}
	if !want.ModTime.IsZero() && !h.ModTime.Equal(want.ModTime) {
		t.Errorf("%s: mtime %v, expectation says %v", p, h.ModTime, want.ModTime)
	}
}

// TestDeterministic builds each image twice from the same busybox and
// expects the same bytes: digests must depend on the recipe only.
func TestDeterministic(t *testing.T) {
	base, err := readBase(Busybox(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func(string, *baseImage) error{
		"layered": writeLayered,
		"multi":   writeMulti,
		"schema2": writeSchema2,
	} {
		t.Run(name, func(t *testing.T) {
			a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
			if err := write(a, base); err != nil {
				t.Fatal(err)
			}
			if err := write(b, base); err != nil {
				t.Fatal(err)
			}
			sameLayout(t, a, b)
		})
	}
	// The cached layouts are what a build now gives: a recipe changed
	// without its version would otherwise go on serving the old image.
	for name, img := range map[string]struct {
		dir   string
		write func(string, *baseImage) error
		bump  string
	}{
		"layered": {Layered(t), writeLayered, "layeredVersion"},
		"multi":   {MultiPlatform(t), writeMulti, "multiVersion"},
		"schema2": {DockerSchema2(t), writeSchema2, "schema2Version"},
	} {
		fresh := filepath.Join(t.TempDir(), name)
		if err := img.write(fresh, base); err != nil {
			t.Fatal(err)
		}
		if !t.Run("cached-"+name, func(t *testing.T) { sameLayout(t, img.dir, fresh) }) {
			t.Errorf("the cached %s image is not what its recipe builds now: bump %s", name, img.bump)
		}
	}
}

func TestMultiPlatform(t *testing.T) {
	dir := MultiPlatform(t)
	l := checkLayout(t, dir)
	if l.index == nil || l.top.Annotations["io.containerd.image.name"] != MultiName {
		t.Fatalf("index.json entry %+v", l.top)
	}
	if len(l.images) != 4 {
		t.Fatalf("%d manifests in the index, want 3 images and an attestation", len(l.images))
	}
	bb := checkLayout(t, Busybox(t)).images[0]
	for i, p := range MultiPlatforms() {
		img := l.images[i]
		if img.desc.Platform == nil || PlatformString(*img.desc.Platform) != PlatformString(p) {
			t.Errorf("manifest %d: platform %+v, want %s", i, img.desc.Platform, PlatformString(p))
			continue
		}
		layers := img.manifest.Layers
		wantLayers := 1
		if p.Architecture == runtime.GOARCH {
			wantLayers = 2
			if layers[0].Digest != bb.manifest.Layers[0].Digest {
				t.Errorf("%s: first layer %s, not busybox's", PlatformString(p), layers[0].Digest)
			}
		}
		if len(layers) != wantLayers {
			t.Fatalf("%s: %d layers, want %d", PlatformString(p), len(layers), wantLayers)
		}
		entries := readLayer(t, dir, layers[len(layers)-1])
		if len(entries) != 1 || entries[0].hdr.Name != "platform" || string(entries[0].content) != PlatformString(p)+"\n" {
			t.Errorf("%s: top layer %+v", PlatformString(p), entries)
		}
		if !slices.Equal(img.config.Config.Cmd, []string{"cat", "/platform"}) {
			t.Errorf("%s: Cmd %q", PlatformString(p), img.config.Config.Cmd)
		}
	}
	att := l.images[3]
	if att.desc.Platform == nil || att.desc.Platform.OS != "unknown" || att.desc.Platform.Architecture != "unknown" ||
		att.desc.Annotations[AnnotationReferenceType] != AttestationManifest ||
		att.desc.Annotations[AnnotationReferenceDigest] != l.images[0].desc.Digest.String() {
		t.Errorf("attestation entry %+v", att.desc)
	}
	if len(att.manifest.Layers) != 1 || att.manifest.Layers[0].MediaType != "application/vnd.in-toto+json" {
		t.Errorf("attestation manifest %+v", att.manifest)
	}
	if d, err := selectImage(dir, l.top); err != nil || d.Platform.Architecture != runtime.GOARCH {
		t.Errorf("host image of the index: %+v %v", d, err)
	}
}

func TestDockerSchema2(t *testing.T) {
	l := checkLayout(t, DockerSchema2(t))
	bb := checkLayout(t, Busybox(t)).images[0]
	m := l.images[0].manifest
	if l.top.MediaType != MediaTypeDockerManifest || m.MediaType != MediaTypeDockerManifest ||
		m.Config.MediaType != MediaTypeDockerConfig || len(m.Layers) != 1 || m.Layers[0].MediaType != MediaTypeDockerLayer {
		t.Fatalf("manifest %+v", m)
	}
	if m.Config.Digest != bb.manifest.Config.Digest || m.Layers[0].Digest != bb.manifest.Layers[0].Digest {
		t.Errorf("config %s layer %s; busybox has %s and %s", m.Config.Digest, m.Layers[0].Digest, bb.manifest.Config.Digest, bb.manifest.Layers[0].Digest)
	}
	if l.top.Digest == bb.desc.Digest {
		t.Error("the schema2 manifest is busybox's OCI manifest")
	}
}
