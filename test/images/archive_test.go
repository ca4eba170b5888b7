package images

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// untar unpacks a tar of directories and regular files into a new
// directory and returns it, refusing names that leave it.
func untar(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || !hdr.ModTime.Equal(archiveTime) {
			t.Errorf("%s: owner %d:%d mtime %v", hdr.Name, hdr.Uid, hdr.Gid, hdr.ModTime)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(hdr.Name, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			out, err := root.Create(hdr.Name)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(out, tr)
			out.Close()
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("%s: tar type %q in an archive", hdr.Name, hdr.Typeflag)
		}
	}
}

func TestArchiveOCI(t *testing.T) {
	layout := Layered(t)
	path := Archive(t, layout, OCIArchive)
	dir := untar(t, path)
	sameLayout(t, layout, dir)
	checkLayout(t, dir)
	if again := Archive(t, layout, OCIArchive); again != path {
		t.Errorf("second archive at %s, first at %s", again, path)
	}
	skopeoInspect(t, "oci-archive:"+path)
}

func TestArchiveDocker(t *testing.T) {
	for name, c := range map[string]struct {
		layout   string
		repoTags []string
	}{
		"layered": {Layered(t), []string{"berth-test/layered:latest"}},
		"busybox": {Busybox(t), []string{"berth/busybox:latest"}},
		"multi":   {MultiPlatform(t), []string{"berth-test/multi:latest"}},
		"schema2": {DockerSchema2(t), []string{"berth-test/schema2:latest"}},
	} {
		t.Run(name, func(t *testing.T) {
			top, err := topManifest(c.layout)
			if err != nil {
				t.Fatal(err)
			}
			src, err := selectImage(c.layout, top)
			if err != nil {
				t.Fatal(err)
			}
			var srcManifest ocispec.Manifest
			if err := readJSONBlob(c.layout, src, &srcManifest); err != nil {
				t.Fatal(err)
			}

			path := Archive(t, c.layout, DockerArchive)
			dir := untar(t, path)
			l := checkLayout(t, dir)
			img := l.images[0]
			// The image ID survives the save; the layers are stored
			// uncompressed, named by their diff IDs.
			if img.manifest.Config.Digest != srcManifest.Config.Digest {
				t.Errorf("config %s, the image's is %s", img.manifest.Config.Digest, srcManifest.Config.Digest)
			}
			for i, d := range img.manifest.Layers {
				if d.MediaType != ocispec.MediaTypeImageLayer || d.Digest != img.config.RootFS.DiffIDs[i] {
					t.Errorf("layer %d: %+v", i, d)
				}
			}
			if l.top.Annotations["org.opencontainers.image.ref.name"] == "" || l.top.Annotations["io.containerd.image.name"] != top.Annotations["io.containerd.image.name"] {
				t.Errorf("index.json annotations %v", l.top.Annotations)
			}

			var manifest []dockerManifestEntry
			readJSON(t, filepath.Join(dir, "manifest.json"), &manifest)
			if len(manifest) != 1 || manifest[0].Config != "blobs/sha256/"+img.manifest.Config.Digest.Encoded() ||
				!slices.Equal(manifest[0].RepoTags, c.repoTags) || len(manifest[0].Layers) != len(img.manifest.Layers) {
				t.Fatalf("manifest.json %+v", manifest)
			}
			for i, p := range manifest[0].Layers {
				if p != "blobs/sha256/"+img.manifest.Layers[i].Digest.Encoded() {
					t.Errorf("manifest.json layer %d: %s", i, p)
				}
			}
			var repos map[string]map[string]string
			readJSON(t, filepath.Join(dir, "repositories"), &repos)
			if len(repos) != 1 {
				t.Errorf("repositories %v", repos)
			}
			if info := skopeoInspect(t, "docker-archive:"+path); info != nil {
				var layers []digest.Digest
				for _, d := range img.manifest.Layers {
					layers = append(layers, d.Digest)
				}
				if !slices.Equal(info.Layers, layers) || info.Architecture != runtime.GOARCH {
					t.Errorf("skopeo inspect: %+v", info)
				}
			}
		})
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// skopeoInfo is the part of `skopeo inspect` output the tests read.
type skopeoInfo struct {
	Architecture string
	Os           string
	Layers       []digest.Digest
	RepoTags     []string
}

// skopeoInspect has skopeo, a reader written by others, inspect an
// archive; nil when skopeo is not installed.
func skopeoInspect(t *testing.T, ref string) *skopeoInfo {
	t.Helper()
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Log("no skopeo: archive not checked by a second reader")
		return nil
	}
	var stderr bytes.Buffer
	cmd := exec.Command(skopeo, "inspect", ref)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v: %s", ref, err, stderr.Bytes())
	}
	var info skopeoInfo
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("skopeo inspect %s: %v: %s", ref, err, out)
	}
	if info.Os != "linux" || info.Architecture == "" || len(info.Layers) == 0 {
		t.Errorf("skopeo inspect %s: %s", ref, out)
	}
	return &info
}
