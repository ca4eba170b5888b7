package image

import (
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"testing"
)

// The parsers of what registries and archives send: whatever the bytes,
// they return an error or a value the store can use, and never panic.

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:ca1363d6b3eeb672be3075cd486f1863d0e3a4a7bff49c3cb5d6d3b5f22fcecc","size":408},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:f0bbd514765fd85b307c78769ae5948becf85418c07a583fcf9ea4d10c56c6c4","size":3134913}]}`))
	f.Add([]byte(`{"schemaVersion":1,"name":"x","fsLayers":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"sha256:../../etc/passwd"},"layers":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"sha256:ca1363d6b3eeb672be3075cd486f1863d0e3a4a7bff49c3cb5d6d3b5f22fcecc"},"layers":[{"mediaType":"text/html","digest":"sha256:ca1363d6b3eeb672be3075cd486f1863d0e3a4a7bff49c3cb5d6d3b5f22fcecc","size":-1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseManifest(data)
		if err != nil {
			return
		}
		if m.Config.Digest.Validate() != nil {
			t.Fatalf("accepted a manifest whose config digest is invalid: %q", m.Config.Digest)
		}
		for _, l := range m.Layers {
			if l.Digest.Validate() != nil || l.Size < 0 || !isLayerType(l.MediaType) {
				t.Fatalf("accepted a bad layer: %+v", l)
			}
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"],"Healthcheck":{"Test":["CMD","true"]}},"rootfs":{"type":"layers","diff_ids":["sha256:f0bbd514765fd85b307c78769ae5948becf85418c07a583fcf9ea4d10c56c6c4"]},"history":[{"created_by":"x","empty_layer":true}]}`))
	f.Add([]byte(`{"rootfs":{"type":"layers","diff_ids":["md5:abc"]}}`))
	f.Add([]byte(`{"rootfs":{"type":"zfs"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseConfig(data)
		if err != nil {
			return
		}
		for _, d := range cfg.RootFS.DiffIDs {
			if d.Validate() != nil {
				t.Fatalf("accepted an invalid diff ID %q", d)
			}
		}
		chainIDs(cfg.RootFS.DiffIDs)
	})
}

func FuzzChanges(f *testing.F) {
	for _, s := range []string{`CMD ["/bin/sh","-c","x"]`, `ENV A=1 B="two words"`, "ENV A b c", "EXPOSE 80 53/udp", "VOLUME [\"/data\"]", `LABEL "a b"=c`, "RUN x", "ENV =x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, change string) {
		var c configForFuzz
		_ = ApplyChanges(&c.Config, []string{change})
	})
}

type configForFuzz struct {
	Config dockerConfig
}

type dockerConfig = dockerspec.DockerOCIImageConfig
