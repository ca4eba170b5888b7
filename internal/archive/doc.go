// Package archive turns image layer tars into files and files back into
// layer tars, safely and fast.
//
// Apply writes an uncompressed layer tar beneath a directory. Every tar entry
// is hostile input: names with "..", absolute names, symlinks placed by an
// earlier entry (or by a lower layer, when a layer is applied onto a copy of
// its parent) and then written through, hardlinks to files outside, whiteouts
// naming paths outside, device nodes and setuid files. Apply is immune to all
// of these by construction rather than by checking names:
//
//   - the target directory is opened once; every name is resolved relative to
//     that descriptor, one component at a time with O_NOFOLLOW, and where a
//     component is a symlink the prefix is resolved again with
//     openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), so the kernel confines
//     the walk to the target exactly as a chroot would;
//   - the final component is never followed: it is created with the *at
//     system calls (openat O_CREAT|O_EXCL|O_NOFOLLOW, mkdirat, symlinkat,
//     mknodat, linkat without AT_SYMLINK_FOLLOW) beneath its parent's
//     descriptor, and an existing entry is removed first (never written
//     through: it may be a symlink or share its inode with a lower layer);
//   - metadata is set on descriptors (fchown, fchmod, futimens, fsetxattr) or,
//     for descriptors opened with O_PATH, through /proc/self/fd/N, which names
//     exactly the opened inode; symlinks get the AT_SYMLINK_NOFOLLOW variants.
//
// Names are cleaned as paths below the root: a leading "/" is dropped (as
// GNU tar does), and a name or hardlink target that climbs above the root
// with ".." is refused with ErrBreakout. A non-directory entry naming the
// root itself, names longer than PATH_MAX and unknown entry types are refused
// with ErrInvalid. An error about an entry is an *EntryError naming it.
//
// Whiteouts come in two formats: WhiteoutOverlay writes a layer into its own
// empty directory the way overlayfs expects it (a 0/0 character device for a
// deleted name, trusted.overlay.opaque=y on an opaque directory), and
// WhiteoutApply applies the deletions to a tree that already holds the lower
// layers.
//
// Tar is the reverse: a directory as a deterministic layer tar (sorted, PAX,
// numeric ids, xattrs, hardlinks by inode), with overlay whiteouts translated
// back to .wh. entries on request. Decompress and Compress handle the layer
// media types (gzip and zstd, detected by magic number).
//
// Speed: parent directories are resolved once and their descriptors cached
// (the cache is dropped whenever an entry removes or replaces a directory or
// a symlink, the only ways a cached name can change meaning); the input is
// read ahead in a goroutine, so decompression overlaps the file system
// calls; small files, once created in tar order, are written and finished by
// two writer goroutines; zero blocks become holes. Durability is the
// caller's: Apply never fsyncs (a layer is synced once, e.g. with syncfs,
// before it is committed).
//
// The package imports only the standard library, x/sys, the runtime-spec
// types (for id mappings) and klauspost/compress. Anything that unpacks or
// packs layers may import it: image, snapshot, the engine's copy and export.
package archive
