// Package dircache keeps slow-to-build directories (test rootfs images,
// guest kernels and images) under a cache root: each entry is built in a
// temporary directory beside its final name and renamed into place, so a
// reader sees a complete entry or none; entries are touched on use and
// pruned when unused for a week.
//
// Importers: internal/vm (guest kernels and images), test/fixture (busybox
// rootfs, probe, OCI image).
package dircache
