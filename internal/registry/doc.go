// Package registry is berth's client of the distribution protocol (the
// Docker Registry HTTP API V2 and OCI distribution spec): it resolves
// references to manifests, opens blobs from an offset, and pushes images.
//
// The wire and the auth handshake are go-containerregistry's
// (pkg/v1/remote/transport: the /v2/ ping, basic auth, the bearer token
// flow and its refresh); the policy on top is berth's, and matches
// docker's:
//
//   - References are normalised as docker does (ParseReference):
//     "busybox" is docker.io/library/busybox:latest.
//   - Plain HTTP and unverified TLS only for insecure registries:
//     loopback always, others when the Config lists them (host[:port] or
//     CIDR). For those the transport tries https (unverified) first and
//     plain HTTP 300 ms later or as soon as https fails, as docker
//     tries https before http. go-containerregistry would also fall back
//     to plain HTTP for RFC 1918 addresses; policyTransport refuses that.
//   - go-containerregistry refuses token realms (and redirects of the
//     token request) at loopback or private IP literals other than the
//     registry's own host:port, against SSRF; a realm with a host name
//     is fine.
//   - Mirrors are tried in order before docker.io, for pulls only.
//   - Credentials: the caller's Auth, else config.json with its
//     credsStore and credHelpers, read with docker's own config code.
//   - Retries: 3 attempts 200 ms apart and doubling, on network errors,
//     5xx and 429 only. Reads that fail mid-stream are not retried here:
//     the content store resumes them with a new Fetch at its offset.
//
// Invariants that stand between a hostile registry and the rest of berth:
//
//   - A manifest or index is at most MaxManifestSize (4 MiB) and is
//     verified against the digest it was asked by, or against the
//     Docker-Content-Digest the registry sent (CVE-2024-3727); schema 1
//     manifests are refused.
//   - Descriptors in manifests and indexes have a valid digest, a
//     non-negative size and a media type before they are returned.
//   - A blob reader yields exactly the descriptor's size, never more.
//     Its digest is checked by the consumer (internal/content), which sees
//     the whole blob even when the download resumed.
//   - Redirects never leave http(s) and never go from https to http.
//
// Errors are *Error values whose Kind is one of ErrNotFound,
// ErrUnauthorized, ErrNoMatchingPlatform, ErrUnreachable,
// ErrInvalidReference or ErrInvalidManifest, with docker's message
// ("pull access denied for x, repository does not exist or may require
// 'docker login': ..."), so the API maps them to docker's status codes.
//
// Imported by internal/image; imports nothing of berth.
package registry
