package engine

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	digest "github.com/opencontainers/go-digest"
)

// CommitOptions are docker commit's options.
type CommitOptions struct {
	Ref     string // repository[:tag] for the new image, optional
	Author  string
	Comment string
	Changes []string // Dockerfile instructions applied to the config
	Pause   bool     // freeze the container while its layer is read
	// Config, when set, replaces the container's config in the image, as
	// the API's request body does.
	Config *container.Config
}

// Commit makes an image of a container: its image's layers, its changes
// as one more layer, and its config with opts' changes.
func (e *Engine) Commit(ctx context.Context, ref string, opts CommitOptions) (string, error) {
	c, err := e.lookup(ref)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	cfg := cloneJSON(c.rec.Config)
	imageID := c.rec.ImageID
	running := c.rec.State.Status == container.StateRunning && c.task != nil
	task := c.task
	cmd := append([]string{c.rec.Path}, c.rec.Args...)
	c.mu.Unlock()
	if opts.Config != nil {
		cfg = cloneJSON(opts.Config)
	}

	mounts, err := e.snaps.Mounts(ctx, c.id)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.id, err)
	}
	upper := ""
	if len(mounts) == 1 && mounts[0].Type == "overlay" {
		for _, o := range mounts[0].Options {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				upper = v
			}
		}
	}
	if upper == "" {
		return "", errdefs.Classify(errdefs.ErrNotImplemented, fmt.Errorf("commit of %s: the %s snapshotter keeps no separate layer of a container's changes; commit needs overlayfs", c.id, mounts[0].Type))
	}

	imgCfg := imageConfig(cfg)
	if err := image.ApplyChanges(&imgCfg, opts.Changes); err != nil {
		return "", err
	}
	if opts.Pause && running {
		if err := task.Pause(ctx); err == nil {
			defer task.Resume(context.WithoutCancel(ctx))
		}
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(archive.Tar(ctx, upper, pw, archive.TarOptions{OverlayWhiteouts: true}))
	}()
	defer pr.Close()
	img, err := e.images.Commit(ctx, image.CommitOptions{
		Parent:    digest.Digest(imageID),
		Layer:     pr,
		Config:    imgCfg,
		Author:    opts.Author,
		Comment:   opts.Comment,
		CreatedBy: strings.Join(cmd, " "),
		Ref:       opts.Ref,
	})
	if err != nil {
		return "", err
	}
	e.emit(events.ActionCommit, c, map[string]string{"comment": opts.Comment, "imageID": img.ID.String(), "imageRef": opts.Ref})
	return img.ID.String(), nil
}

// imageConfig is the part of a container's config an image keeps.
func imageConfig(cfg *container.Config) dockerspec.DockerOCIImageConfig {
	var out dockerspec.DockerOCIImageConfig
	out.User = cfg.User
	out.Env = cfg.Env
	out.Entrypoint = cfg.Entrypoint
	out.Cmd = cfg.Cmd
	out.WorkingDir = cfg.WorkingDir
	out.Labels = cfg.Labels
	out.StopSignal = cfg.StopSignal
	out.Volumes = cfg.Volumes
	out.OnBuild = cfg.OnBuild
	out.Shell = cfg.Shell
	out.ArgsEscaped = cfg.ArgsEscaped //nolint:staticcheck // kept as docker keeps it
	for p := range cfg.ExposedPorts {
		if out.ExposedPorts == nil {
			out.ExposedPorts = map[string]struct{}{}
		}
		out.ExposedPorts[p.String()] = struct{}{}
	}
	if h := cfg.Healthcheck; h != nil {
		out.Healthcheck = &dockerspec.HealthcheckConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	return out
}
