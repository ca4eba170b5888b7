// Package socket makes the listeners berthd serves the Engine API on.
//
// Only unix sockets are served. A socket is created with mode 0660, owned
// by root and the daemon's group, so that only root and members of that
// group reach an API that is root-equivalent (SECURITY.md). TCP is refused:
// serving the API on a network needs TLS client authentication, which
// berthd does not have yet.
//
// Preconditions: the caller holds berthd's exclusive lock, so a socket file
// already at the path is stale and may be replaced.
//
// Imported by cmd/berthd.
package socket
