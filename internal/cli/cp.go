package cli

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-project/berth/internal/archive"
)

// cpCommand is docker cp: CONTAINER:SRC_PATH DEST_PATH|- or SRC_PATH|-
// CONTAINER:DEST_PATH. The tars go through the API as docker's do; a tar
// from a container is hostile and is written locally by internal/archive,
// which follows no symlink out of the destination.
func (c *CLI) cpCommand() *cobra.Command {
	var archiveMode, follow, quiet bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcCtr, srcPath := splitCpArg(args[0])
			dstCtr, dstPath := splitCpArg(args[1])
			switch {
			case srcCtr != "" && dstCtr != "":
				return errors.New("copying between containers is not supported")
			case srcCtr == "" && dstCtr == "":
				return errors.New("must specify at least one container source")
			case srcCtr != "":
				return c.copyFrom(cmd, srcCtr, srcPath, dstPath)
			}
			return c.copyTo(cmd, srcPath, dstCtr, dstPath, archiveMode, follow)
		},
	}
	cmd.Flags().BoolVarP(&archiveMode, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	cmd.Flags().BoolVarP(&follow, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress progress output during copy")
	return cmd
}

// splitCpArg splits "container:path"; a path that starts with / or . or
// has no colon is local.
func splitCpArg(arg string) (string, string) {
	if filepath.IsAbs(arg) || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok {
		return "", arg
	}
	return ctr, p
}

// copyFrom copies a container's path to dst: a tar on stdout for "-",
// else into dst when it is a directory, else as dst.
func (c *CLI) copyFrom(cmd *cobra.Command, ctr, src, dst string) error {
	ctx := cmd.Context()
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	res, err := api.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: src})
	if err != nil {
		return err
	}
	defer res.Content.Close()
	if dst == "-" {
		_, err := io.Copy(c.Out, res.Content)
		return err
	}
	srcBase := res.Stat.Name
	dir, rename := dst, ""
	fi, err := os.Stat(dst)
	switch {
	case err == nil && fi.IsDir():
		if strings.HasSuffix(src, "/.") {
			// "dir/." copies the content, whose entries are "./...".
			srcBase = "."
		}
	case err == nil && res.Stat.Mode.IsDir():
		return fmt.Errorf("cannot copy a directory to a file: %s", dst)
	case err == nil || errors.Is(err, fs.ErrNotExist):
		if strings.HasSuffix(dst, "/") && errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("destination directory %q does not exist", dst)
		}
		dir, rename = filepath.Dir(dst), filepath.Base(dst)
		if pfi, err := os.Stat(dir); err != nil || !pfi.IsDir() {
			return fmt.Errorf("destination directory %q does not exist", dir)
		}
	default:
		return err
	}
	r := res.Content
	var rc io.ReadCloser = io.NopCloser(r)
	if rename != "" && srcBase != "" {
		rc = renameTar(r, srcBase, rename)
	}
	defer rc.Close()
	_, err = archive.Apply(ctx, dir, rc, archive.ApplyOptions{Whiteouts: archive.WhiteoutNone, KeepOwner: os.Geteuid() != 0})
	return err
}

// copyTo copies a local path (or a tar on stdin for "-") into a
// container: into dst when it is a directory there, else as dst.
func (c *CLI) copyTo(cmd *cobra.Command, src, ctr, dst string, keepIDs, follow bool) error {
	ctx := cmd.Context()
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	if src == "-" {
		_, err := api.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{DestinationPath: dst, Content: c.In, CopyUIDGID: keepIDs})
		return err
	}
	stat := os.Lstat
	if follow {
		stat = os.Stat
	}
	fi, err := stat(src)
	if err != nil {
		return err
	}
	name := filepath.Base(src)
	destDir := dst
	if st, err := api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dst}); err == nil {
		if !st.Stat.Mode.IsDir() {
			if fi.IsDir() {
				return fmt.Errorf("cannot copy a directory to a file: %s", dst)
			}
			destDir, name = path.Dir(dst), path.Base(dst)
		} else if strings.HasSuffix(src, "/.") {
			name = "."
		}
	} else if isNotFound(err) {
		if strings.HasSuffix(dst, "/") {
			return fmt.Errorf("destination directory %q does not exist", dst)
		}
		destDir, name = path.Dir(dst), path.Base(dst)
	} else {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarPath(cmd, src, fi, name, pw)) }()
	defer pr.Close()
	_, err = api.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{DestinationPath: destDir, Content: pr, CopyUIDGID: keepIDs})
	return err
}

// tarPath writes src as a tar whose entries are named name[/...].
func tarPath(cmd *cobra.Command, src string, fi fs.FileInfo, name string, w io.Writer) error {
	if !fi.IsDir() {
		tw := tar.NewWriter(w)
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			var err error
			if link, err = os.Readlink(src); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name, hdr.Uname, hdr.Gname = name, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(tw, f); err != nil {
				return err
			}
		}
		return tw.Close()
	}
	// A directory: its own entry, then its content (archive.Tar writes
	// the content with relative names) beneath name.
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.Tar(cmd.Context(), src, pw, archive.TarOptions{})) }()
	defer pr.Close()
	tw := tar.NewWriter(w)
	hdr, err := tar.FileInfoHeader(fi, "")
	if err != nil {
		return err
	}
	hdr.Name, hdr.Uname, hdr.Gname = name+"/", "", ""
	if name == "." {
		hdr.Name = "./"
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	tr := tar.NewReader(pr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		h.Name = path.Join(name, h.Name)
		if strings.HasSuffix(h.Name, "/") || h.Typeflag == tar.TypeDir {
			h.Name = strings.TrimSuffix(h.Name, "/") + "/"
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = path.Join(name, h.Linkname)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}

// renameTar rewrites a tar's leading path element from -> to (docker cp
// to a new name).
func renameTar(r io.Reader, from, to string) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(r)
		tw := tar.NewWriter(pw)
		rename := func(n string) string {
			if n == from || n == from+"/" {
				return to + strings.TrimPrefix(n, from)
			}
			if rest, ok := strings.CutPrefix(n, from+"/"); ok {
				return to + "/" + rest
			}
			return n
		}
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				pw.CloseWithError(tw.Close())
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			h.Name = rename(h.Name)
			if h.Typeflag == tar.TypeLink {
				h.Linkname = rename(h.Linkname)
			}
			if err := tw.WriteHeader(h); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}
