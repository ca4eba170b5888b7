package image

import (
	"context"
	"slices"
	"time"
)

// History lists how the image was built, newest step first, with the size
// of the layer each step added: docker history.
func (s *Service) History(ctx context.Context, nameOrID string) ([]HistoryEntry, error) {
	img, err := s.Get(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	var out []HistoryEntry
	layer := 0
	hist := img.Config.History
	if len(hist) == 0 {
		// A config without history (import, some tools): one step per layer.
		for range img.Layers {
			out = append(out, HistoryEntry{Created: img.Created})
		}
		for i := range out {
			out[i].Size = img.Layers[i].Size
		}
	}
	for _, h := range hist {
		e := HistoryEntry{CreatedBy: h.CreatedBy, Comment: h.Comment}
		if h.Created != nil {
			e.Created = *h.Created
		}
		if !h.EmptyLayer && layer < len(img.Layers) {
			e.Size = img.Layers[layer].Size
			layer++
		}
		out = append(out, e)
	}
	slices.Reverse(out)
	for i := range out {
		out[i].ID = "<missing>"
		if out[i].Created.IsZero() {
			out[i].Created = time.Unix(0, 0).UTC()
		}
	}
	if len(out) > 0 {
		out[0].ID = img.ID.String()
		for _, n := range img.Names {
			out[0].Tags = append(out[0].Tags, familiar(n))
		}
	}
	return out, nil
}
