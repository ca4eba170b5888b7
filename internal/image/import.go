package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/registry"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Import makes a one-layer image from a root filesystem tarball (plain,
// gzip or zstd), as docker import does: the layer is stored gzip-
// compressed, the config says when and how, and opts.Changes adjust it.
func (s *Service) Import(ctx context.Context, r io.Reader, opts ImportOptions) (*Image, error) {
	var ref registry.Reference
	if opts.Ref != "" {
		var err error
		if ref, err = registry.ParseReference(opts.Ref); err != nil {
			return nil, classify(ErrInvalid, err)
		}
		if ref.Digest() != "" {
			return nil, invalidf("import: cannot name an image with a digest reference: %s", opts.Ref)
		}
	}
	platform := hostPlatform()
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	now := time.Now().UTC()
	cfg := dockerspec.DockerOCIImage{}
	cfg.Created = &now
	cfg.OS, cfg.Architecture, cfg.Variant = platform.OS, platform.Architecture, platform.Variant
	if err := ApplyChanges(&cfg.Config, opts.Changes); err != nil {
		return nil, err
	}

	s.gc.RLock()
	defer s.gc.RUnlock()
	layer, diffID, err := s.compressLayer(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}
	comment := opts.Message
	if comment == "" {
		comment = "Imported from -"
	}
	cfg.History = []ocispec.History{{Created: &now, CreatedBy: "", Comment: comment}}
	configData, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	configDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(configData), Size: int64(len(configData))}
	if err := s.content.Put(ctx, configDesc, bytes.NewReader(configData)); err != nil {
		return nil, err
	}
	m := ocispec.Manifest{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispec.Descriptor{layer},
	}
	manifestData, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	target := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifestData), Size: int64(len(manifestData))}
	if err := s.content.Put(ctx, target, bytes.NewReader(manifestData)); err != nil {
		return nil, err
	}
	if err := s.unpack(ctx, []layerSource{{desc: layer, diffID: diffID}}, func(Progress) {}); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var names []string
	if opts.Ref != "" {
		names = append(names, nameKey(ref))
	}
	if _, err := s.record(configDesc.Digest, target, nil, names); err != nil {
		return nil, err
	}
	return s.Get(ctx, configDesc.Digest.String())
}

// compressLayer stores a tar stream as a gzip layer blob, returning the
// blob's descriptor and the digest of the uncompressed tar.
func (s *Service) compressLayer(ctx context.Context, r io.Reader) (ocispec.Descriptor, digest.Digest, error) {
	tarStream, _, err := archive.Decompress(r)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer tarStream.Close()
	tmp, err := os.CreateTemp(s.tmpDir(), "layer-")
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	blobHash := digest.Canonical.Digester()
	counter := &countingWriter{w: io.MultiWriter(tmp, blobHash.Hash())}
	zw, err := archive.Compress(counter, archive.Gzip)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	diffHash := digest.Canonical.Digester()
	if _, err := io.Copy(io.MultiWriter(zw, diffHash.Hash()), &ctxReader{ctx: ctx, r: tarStream}); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := zw.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: blobHash.Digest(), Size: counter.n}
	if err := s.content.Put(ctx, desc, tmp); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	return desc, diffHash.Digest(), nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ApplyChanges applies docker's --change instructions (Dockerfile syntax,
// the subset docker import and commit accept) to a config.
func ApplyChanges(c *dockerspec.DockerOCIImageConfig, changes []string) error {
	for _, change := range changes {
		change = strings.TrimSpace(change)
		if change == "" {
			continue
		}
		instr, arg, _ := strings.Cut(change, " ")
		arg = strings.TrimSpace(arg)
		switch strings.ToUpper(instr) {
		case "CMD":
			c.Cmd = commandArgs(arg)
		case "ENTRYPOINT":
			c.Entrypoint = commandArgs(arg)
		case "ENV":
			kvs, err := keyValues(arg, "ENV")
			if err != nil {
				return err
			}
			for _, kv := range kvs {
				c.Env = setEnv(c.Env, kv[0], kv[1])
			}
		case "LABEL":
			kvs, err := keyValues(arg, "LABEL")
			if err != nil {
				return err
			}
			if c.Labels == nil {
				c.Labels = map[string]string{}
			}
			for _, kv := range kvs {
				c.Labels[kv[0]] = kv[1]
			}
		case "EXPOSE":
			if c.ExposedPorts == nil {
				c.ExposedPorts = map[string]struct{}{}
			}
			for _, p := range strings.Fields(arg) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				c.ExposedPorts[p] = struct{}{}
			}
		case "USER":
			c.User = arg
		case "WORKDIR":
			c.WorkingDir = arg
		case "STOPSIGNAL":
			c.StopSignal = arg
		case "VOLUME":
			if c.Volumes == nil {
				c.Volumes = map[string]struct{}{}
			}
			var vols []string
			if strings.HasPrefix(arg, "[") {
				if err := json.Unmarshal([]byte(arg), &vols); err != nil {
					return invalidf("invalid change %q: %v", change, err)
				}
			} else {
				vols = strings.Fields(arg)
			}
			for _, v := range vols {
				c.Volumes[v] = struct{}{}
			}
		default:
			return invalidf("invalid change %q: %s is not one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR", change, instr)
		}
	}
	return nil
}

// commandArgs reads CMD and ENTRYPOINT: JSON (exec form) or a shell line.
func commandArgs(arg string) []string {
	var args []string
	if strings.HasPrefix(arg, "[") && json.Unmarshal([]byte(arg), &args) == nil {
		return args
	}
	return []string{"/bin/sh", "-c", arg}
}

// keyValues reads ENV and LABEL: k=v pairs (values may be quoted), or the
// old single "KEY value" form.
func keyValues(arg, instr string) ([][2]string, error) {
	if !strings.Contains(strings.SplitN(arg, " ", 2)[0], "=") {
		k, v, ok := strings.Cut(arg, " ")
		if !ok || k == "" {
			return nil, invalidf("invalid %s %q: want KEY=VALUE", instr, arg)
		}
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for _, f := range splitQuoted(arg) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, invalidf("invalid %s %q: want KEY=VALUE", instr, f)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// splitQuoted splits on spaces outside double quotes, dropping the quotes.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, escaped, have := false, false, false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped = true
		case r == '"':
			inQuote = !inQuote
			have = true
		case r == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
