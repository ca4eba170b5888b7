// Package image is berth's image store: the names people type, the image
// configs they point at, and the operations that move images in and out —
// pull, push, save, load, import — over the packages that do the work
// (registry for the wire, content for verified blobs, archive for layer
// tars, snapshot for the unpacked layers).
//
// An image is identified by its config digest (docker's image ID) and
// reached through a manifest; both live in the content store, so the only
// state of its own is a small bbolt database of names, pull times and
// layer sizes. Everything the database points at is written first, so a
// crash leaves at worst unreferenced blobs and snapshots, which GC removes.
//
// Layers are fetched and unpacked at the same time: each layer's blob is
// streamed from the registry through the content store (which verifies its
// digest) into the decompressor and the tar applier, and on overlay every
// layer is written into its own directory at once; the snapshots are then
// committed in layer order. docker and containerd unpack one layer after
// another.
package image
