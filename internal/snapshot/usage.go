package snapshot

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
)

// diskUsage counts the distinct inodes below dir (dir included) and the
// st_size of the non-directories among them: hard links count once, as
// they take the space once. Symlinks are counted, never followed.
func diskUsage(ctx context.Context, dir string) (Usage, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]struct{}{}
	var u Usage
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("usage: no stat for %s", path)
		}
		key := inode{uint64(st.Dev), st.Ino}
		if _, dup := seen[key]; dup {
			return nil
		}
		seen[key] = struct{}{}
		u.Inodes++
		if !d.IsDir() {
			u.Size += st.Size
		}
		return nil
	})
	if err != nil {
		return Usage{}, fmt.Errorf("usage of %s: %w", dir, err)
	}
	return u, nil
}
