// Package snapshot keeps the unpacked layers of images as directories named
// by chain ID, and the writable layers of containers above them.
//
// A snapshot is Committed (an immutable layer, named by its chain ID),
// Active (a directory being written: a layer being extracted, or a
// container's writable layer) or a View (a read-only look at a committed
// snapshot). Each has a parent, so committed snapshots form chains that
// images share: a layer common to many images is stored and unpacked once.
//
// Two implementations behind one interface:
//
//   - overlay: each snapshot's directory holds only its own layer's diff,
//     with overlayfs whiteouts (0/0 character devices, the
//     trusted.overlay.opaque xattr). A container's root is an overlayfs of
//     its chain. Extractions do not depend on their parent, so a pull
//     extracts every layer at once and commits them in order.
//   - copy: each snapshot's directory is a complete tree, a copy of its
//     parent (reflinks where the file system has them) with the layer
//     applied, whiteouts already carried out. For kernels or file systems
//     where overlayfs cannot be mounted; costs disk and time.
//
// Invariants:
//
//   - Snapshot directories are named by an internal number, never by a key
//     or name: keys are caller input and never become paths.
//   - Metadata lives in one bbolt database (root/metadata.db) whose flock
//     makes a root belong to one process. Commit and Remove are single
//     transactions; directories are created after their record and removed
//     after it, and New removes directories no record names, so a crash
//     leaves nothing that is not either listed or cleaned.
//   - An extraction carries LabelExtraction until it is committed, so after
//     a crash GC finds it by Walk and removes it.
//   - A snapshot with children cannot be removed; directories are removed
//     through an os.Root, which never follows a symlink out of the snapshot.
//
// Importers: internal/image (unpack, GC), the engine (container roots).
package snapshot
