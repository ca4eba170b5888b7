// Package hooks validates and runs the OCI lifecycle hooks of a container
// (config.json "hooks": prestart, createRuntime, createContainer,
// startContainer, poststart, poststop).
//
// It is imported by berth-runtime's lifecycle code (internal/runtime and the
// container init for createContainer/startContainer hooks); it imports only
// the standard library and the runtime-spec types.
//
// A hook runs as the spec says: path (absolute) is executed with args as the
// whole argv (args[0] is argv[0]; argv is [path] when args is empty), env as
// the whole environment (empty when absent, never the runtime's), and the
// container's state JSON on stdin. The hook is the leader of a new process
// group so that a timeout kills it and everything it started in that group.
//
// Invariants:
//   - Hooks of one kind run in order; Run stops at the first failure and
//     returns it. Which failures are fatal differs per kind (poststart and
//     poststop failures are only warnings in the spec), so the caller
//     decides; Run only reports.
//   - An error names the kind, the hook's index in the spec's list (from 0)
//     and its path, and carries the last 4 KiB of what the hook wrote to
//     stdout and stderr, so a user sees why it failed.
//   - Nothing runs if any hook of the list is invalid (relative path,
//     timeout <= 0).
//   - The runtime never waits forever on a hook's output: a descendant that
//     keeps stdout or stderr open after the hook exited is given one second
//     (waitDelay), then the pipes are closed and the hook's exit status used.
package hooks
