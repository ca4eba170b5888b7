package engine

import (
	"context"
	"strings"

	"github.com/moby/moby/api/types/events"
)

// Rename gives a container a new name, as docker's POST
// /containers/{id}/rename.
func (e *Engine) Rename(ctx context.Context, ref, newName string) error {
	if ref == "" || newName == "" {
		return invalidf("Neither old nor new names may be empty")
	}
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	n, err := normalizeName(newName)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.rec.Name
	if n == old {
		return invalidf("Renaming a container with the same name as its current name")
	}
	if _, err := e.reserveName(n, c.id); err != nil {
		return err
	}
	c.rec.Name = n
	if err := c.save(); err != nil {
		c.rec.Name = old
		e.releaseName(n, c.id)
		return err
	}
	e.releaseName(old, c.id)
	e.emit(events.ActionRename, c, map[string]string{"oldName": old})
	return nil
}

// nameOf is a container's name without docker's leading "/".
func nameOf(c *ctr) string { return strings.TrimPrefix(c.rec.Name, "/") }
