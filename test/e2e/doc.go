// Package e2e runs the built berthd and berth binaries as a user would:
// a real daemon on a unix socket in a temporary directory (on tmpfs when
// /dev/shm exists), driven by berth and by the docker CLI with DOCKER_HOST
// pointed at it, against a real registry on 127.0.0.1 seeded with the
// busybox fixture image.
//
// The tests need root (berthd refuses to run without it) and skip
// without. The binaries come from $BERTH_BIN_DIR when set (make test sets
// it to bin/), else from bin/ after a `make build` (berthd finds the
// runtime, shim, init and CNI plugins beside itself). The docker CLI tests skip when /usr/local/bin/docker (or
// docker in PATH) is missing.
package e2e
