// Package specgen builds runtime specs: the default one `spec` writes, with
// berth's secure defaults (SECURITY.md), and its rootless variant.
//
// Importers: internal/runtime/cli; later the engine, which starts from
// Default when it turns an image into a container.
package specgen
