package docker

import (
	"net/http"
	"runtime"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"

	"github.com/berth-project/berth/internal/image"
)

// version answers GET /version.
func (s *Server) version(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	kernel := kernelVersion()
	v := system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "Berth"},
		Version:       s.cfg.Version,
		APIVersion:    MaxAPIVersion,
		MinAPIVersion: MinAPIVersion,
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		GitCommit:     s.cfg.GitCommit,
		GoVersion:     runtime.Version(),
		KernelVersion: kernel,
		BuildTime:     s.cfg.BuildTime,
		Components: []system.ComponentVersion{{
			Name:    "Engine",
			Version: s.cfg.Version,
			Details: map[string]string{
				"ApiVersion":    MaxAPIVersion,
				"MinAPIVersion": MinAPIVersion,
				"Arch":          runtime.GOARCH,
				"Os":            runtime.GOOS,
				"GoVersion":     runtime.Version(),
				"GitCommit":     s.cfg.GitCommit,
				"BuildTime":     s.cfg.BuildTime,
				"KernelVersion": kernel,
				"Experimental":  "false",
			},
		}},
	}
	return writeJSON(w, http.StatusOK, v)
}

// diskUsage answers GET /system/df: images, containers (with their
// writable layers) and volumes; berthd has no build cache, so that part
// is empty. API 1.52
// moved to per-type usage objects: older clients get the legacy fields,
// 1.52 both, newer only the new ones, as dockerd does.
func (s *Server) diskUsage(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	ctx := r.Context()
	want := map[string]bool{}
	for _, t := range r.URL.Query()["type"] {
		switch system.DiskUsageObject(t) {
		case system.ContainerObject, system.ImageObject, system.VolumeObject, system.BuildCacheObject:
			want[t] = true
		default:
			return badRequest("invalid type parameter %q: want container, image, volume or build-cache", t)
		}
	}
	all := len(want) == 0
	verbose := boolValue(r, "verbose")

	var summaries []imagetypes.Summary
	var layersSize int64
	if all || want[string(system.ImageObject)] {
		imgs, err := s.images.List(ctx, image.ListOptions{All: true})
		if err != nil {
			return err
		}
		summaries = summarize(ctx, imgs, true)
		if layersSize, err = s.images.DiskUsage(ctx); err != nil {
			return err
		}
	}

	ctrList, vols := []container.Summary{}, []volume.Volume{}
	ctrUsage, volUsage := &container.DiskUsage{}, &volume.DiskUsage{}
	if s.containers != nil {
		var err error
		if all || want[string(system.ContainerObject)] || want[string(system.VolumeObject)] {
			if ctrList, ctrUsage, err = s.containerUsage(ctx); err != nil {
				return err
			}
		}
		if all || want[string(system.VolumeObject)] {
			if vols, volUsage, err = s.volumeUsage(ctx, ctrList); err != nil {
				return err
			}
		}
		inUse := map[string]int64{}
		for _, c := range ctrList {
			inUse[c.ImageID]++
		}
		for i := range summaries {
			summaries[i].Containers = inUse[summaries[i].ID]
		}
	}

	var resp diskUsageResponse
	if !versionBefore(ctx, "1.52") {
		du := &imagetypes.DiskUsage{TotalCount: int64(len(summaries)), TotalSize: layersSize}
		for _, sm := range summaries {
			if sm.Containers > 0 {
				du.ActiveCount++
			} else {
				du.Reclaimable += sm.Size - sm.SharedSize
			}
		}
		if verbose {
			du.Items = summaries
		}
		if all || want[string(system.ImageObject)] {
			resp.ImageUsage = du
		}
		if all || want[string(system.ContainerObject)] {
			resp.ContainerUsage = ctrUsage
			if verbose {
				ctrUsage.Items = ctrList
			}
		}
		if all || want[string(system.VolumeObject)] {
			resp.VolumeUsage = volUsage
			if verbose {
				volUsage.Items = vols
			}
		}
		if all || want[string(system.BuildCacheObject)] {
			resp.BuildCacheUsage = &build.DiskUsage{}
		}
	}
	if versionBefore(ctx, "1.53") && !verbose {
		resp.legacyDiskUsage = &legacyDiskUsage{
			LayersSize: layersSize,
			Images:     summaries,
			Containers: ctrList,
			Volumes:    vols,
			BuildCache: []build.CacheRecord{},
		}
		if resp.legacyDiskUsage.Images == nil {
			resp.legacyDiskUsage.Images = []imagetypes.Summary{}
		}
	}
	return writeJSON(w, http.StatusOK, resp)
}

// legacyDiskUsage is the shape of GET /system/df before API 1.52; the
// wire types module describes only the new one, so the old fields are
// assembled here from its element types.
type legacyDiskUsage struct {
	LayersSize int64
	Images     []imagetypes.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

// diskUsageResponse is the current shape with the legacy fields beside it
// when the request's version still has them (encoding/json flattens both
// embedded structs and skips the nil one).
type diskUsageResponse struct {
	system.DiskUsage
	*legacyDiskUsage
}
