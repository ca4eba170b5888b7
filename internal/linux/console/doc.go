// Package console is the host side of a container's terminal: the
// console-socket protocol the OCI runtime's --console-socket contract
// expects (sending and receiving the pty master), the terminal proxy the
// runtime runs when it runs a container in the foreground, and terminal
// modes and window sizes. Opening the container's pty and making its slave
// the controlling terminal is done inside the container by the runtime's
// C stage (internal/runtime/initstage, pty.c), with the same checks as
// OpenPty here.
//
// The console-socket protocol (runc's, which containerd's shim through
// go-runc's NewTempConsoleSocket/ReceiveMaster and podman's conmon speak):
//
//	receiver (shim, conmon, or       berth-runtime               stage: container init / exec'd process
//	`run` in the foreground)         (host side)                 (inside the container, after pivot_root)
//	------------------------         -----------                 ---------------------------------------
//	listen(--console-socket) ...
//	                                 connect(--console-socket),
//	                                 passes the socket to the
//	                                 child as a descriptor ----->
//	                                                             open /dev/ptmx  (the container's devpts)
//	accept()            <--------------------------------------- send "/dev/ptmx" + master
//	  one stream message: data = a name (runc sends "/dev/ptmx";
//	  receivers use it only as the *os.File name),
//	  SCM_RIGHTS = exactly one descriptor, the pty master
//	                                                             close(master), close(sock)
//	                                                             setsid, TIOCSCTTY on the slave,
//	                                                             dup3 onto 0, 1, 2; then execve
//
// SendFd and RecvFd speak this message; ConnectSocket dials a
// --console-socket. For `run` without --console-socket the runtime makes
// the pair itself with NewSocketPair, keeps one end, receives the master
// with RecvFd and hands it to Proxy together with its own stdin and stdout
// (after MakeRaw on its terminal). OpenPty opens a pty the same way the
// stage does; tests use it to play a container's terminal.
//
// Invariants:
//   - Every descriptor this package creates or receives is O_CLOEXEC, and every
//     terminal it opens is opened O_NOCTTY, so no pty leaks into, or becomes the
//     controlling terminal of, a process by accident (CVE-2024-21626 class).
//   - The slave is reached through the master (TIOCGPTPEER) rather than by a
//     path lookup in /dev/pts, a directory the container controls; the path
//     fallback for kernels before 4.13 checks that what it opened is the
//     devpts slave with the master's index.
//   - The master is sent in blocking mode, as runc and crun send it; receivers
//     choose their own mode.
//   - A pty master's read fails with EIO once every slave descriptor is closed
//     (Linux's way of saying end of file); Proxy treats that as a clean end
//     and returns only after the master has been drained, so the last output of
//     a short-lived process is not lost.
//
// Importers: internal/runtime, internal/runtime/cli and internal/shim (and
// the tests of test/runtime, test/peers and internal/runtimeclient). It
// imports only the standard library and x/sys, because it is linked into
// the small runtime binary.
package console
