// Command probe runs inside test containers and reports what it sees.
//
// It is built as a static binary (CGO_ENABLED=0) by test/fixture and placed
// at /bin/probe in the test rootfs. Tests run it with a sub-command and
// assert on its output and exit status; the JSON shapes live in
// test/probe/report.
//
//	probe [report]           print a report.Report; exit 0
//	probe exit N             exit with status N
//	probe sleep SECONDS      sleep (fractions allowed, "inf" for ever); exit 0
//	                         early on SIGTERM or SIGINT
//	probe cat PATH           copy the file to stdout; on error, message on
//	                         stderr and exit 1
//	probe write PATH CONTENT create/truncate PATH and write CONTENT; print "ok"
//	                         and exit 0, or print the error text and exit 1
//	probe ls PATH            names in the directory, one per line, sorted
//	probe stat PATH          print a report.Stat (lstat, and stat following
//	                         links); exit 1 if lstat fails
//	probe spin               print 1, 2, 3... every 100 ms; exit 0 on SIGTERM
//	probe tty                print a report.Terminal
//	probe hook OUTFILE [EXIT [SLEEP]]
//	                         OCI hook helper: read the state JSON on stdin,
//	                         append one report.Hook line to OUTFILE, then sleep
//	                         SLEEP seconds and exit with EXIT (default 0)
//	probe fork N             start N copies of "probe sleep 30", print a
//	                         report.Fork, kill and reap them; exit 0
//	probe mknod PATH         mknod a character device 1:3 (like /dev/null),
//	                         mode 0666; print "ok" (exit 0) or the errno name
//	                         such as "EPERM" (exit 1)
//	probe open PATH [r|w|rw] open(2) the path, read-only by default; print "ok"
//	                         (exit 0) or the errno name (exit 1)
//
// An unknown sub-command or a bad argument prints usage on stderr and exits
// with status 2.
//
// Invariants worth knowing when reading a report:
//   - The report is gathered before the probe opens anything through the
//     os package's pollable path or starts a timer, because either makes the
//     Go runtime create an epoll descriptor and an eventfd; otherwise the
//     descriptor list would show the probe's own plumbing as if the runtime
//     under test had leaked it. Files are read through descriptors opened
//     with unix.Open and wrapped by os.NewFile, which never registers them
//     with the poller.
//   - The Go runtime raises its own soft RLIMIT_NOFILE to the hard limit
//     minus one at start-up (go.dev/issue/46279). When the probe sees that
//     mark it recovers the limit it was started with by starting a traced
//     copy of itself, which Go gives the original limit and which stops at
//     execve before any of its own code runs, and reading /proc/PID/limits.
//
// Only the standard library and golang.org/x/sys/unix: the binary must run
// in an empty busybox rootfs.
package main
