// Package docker serves the Docker Engine API: the HTTP routes berthd
// answers on its unix socket, for the docker CLI, its SDKs and berth's own
// CLI alike.
//
// Compatibility is by construction: requests and responses are the wire
// types of github.com/moby/moby/api/types, never parallel structs. The
// server speaks API MinAPIVersion up to MaxAPIVersion; a request's version
// comes from its /vX.Y path prefix (none means MaxAPIVersion) and a
// response whose shape changed between versions is written in the shape of
// the version asked for (system/df, events).
//
// One error -> status mapping (errors.go) covers every route: the image
// store's error kinds (image.ErrNotFound...) and this package's request
// errors; error bodies are {"message": "..."} as the client expects.
// Streaming routes (pull, push, load, import) start their 200 response
// with the first progress line, so an error before any progress still gets
// its proper status, and one after it travels in the stream as
// errorDetail, as dockerd does.
//
// Every request is hostile: JSON bodies are size-capped, query parameters
// and filters are checked and refused with 400 naming the parameter.
//
// Containers, exec sessions and volumes are the engine's, reached through
// ContainerBackend (containers.go). Attach and exec start take the
// connection over after docker's upgrade dance (hijack.go) and frame the
// streams of a container without a tty with stdcopy's 8-byte headers
// (stdwriter.go); logs use the same framing.
//
// Imported by cmd/berthd only. It depends on the image store through
// image.Backend, on the engine through ContainerBackend and on the event
// bus.
package docker
