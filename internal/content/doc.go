// Package content is berth's content-addressed blob store: image layers,
// manifests, indexes and configs, each stored once under its sha256 digest.
//
// Layout under the store's root:
//
//	blobs/sha256/<hex>   committed blobs, mode 0644, never written again
//	ingest/<hex>/data    the bytes of an unfinished download, nothing else
//
// Invariants:
//
//   - A committed blob is always right. Bytes are hashed and counted while
//     they are written; the file is fsynced, renamed into blobs/ only when
//     its size and digest equal the descriptor's, and the directory is
//     fsynced after the rename. A crash therefore leaves at most a partial
//     under ingest/, which the next Ingest resumes and GC removes.
//   - Nothing trusts the other side. A source that sends more bytes than the
//     descriptor declares is cut off at the first extra byte (a lying server
//     cannot fill the disk); a digest or size mismatch names both digests and
//     removes the partial, so a bad download is never resumed. Only sha256 is
//     accepted: other algorithms are refused rather than half-supported.
//   - One download per digest. Inside a process, concurrent Ingests of one
//     digest share a single fetch (the others wait and then read the
//     committed blob); across processes a flock on ingest/<hex> does the
//     same. A download that fails is resumed by whoever comes next, from the
//     bytes already on disk.
//
// Importers: internal/image (pull, push, save, load, import, GC) and
// internal/registry, whose Fetch is an OpenFunc.
package content
