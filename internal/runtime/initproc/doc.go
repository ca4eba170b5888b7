// Package initproc is the code that runs inside a container's namespaces:
// the container's init (from `create` to the execve of the user's program)
// and the process `exec` starts in a running container.
//
// Both are the runtime binary re-executed from a sealed memfd (see
// internal/linux/selfexe), entered through Main. The main goroutine is
// locked to the main thread from the package's init function on, because
// credentials, capabilities, no_new_privs and the cgroup namespace made
// with unshare are per thread on Linux, and the final execve must come from
// the thread that holds them.
//
// Errors travel to the runtime as syncmsg error messages naming the step;
// once the init waits on the exec fifo, they go to the fifo, where `start`
// reads them.
//
// Importers: cmd/berth-runtime (Main only).
package initproc
