//go:build cgo

package main

/*
#include <sys/prctl.h>

// No transparent huge pages for a shim's memory, from before the Go
// runtime maps its first heap arena (GODEBUG=disablethp=1 comes too late
// for that one). Where THP is "always" (Debian's kernels) an idle shim
// otherwise holds a 2 MiB page of which it uses a few KiB: more than the
// rest of its own memory. The flag is inherited by forks and kept across
// execve: berth-runtime's init and exec clear it before the container's
// program runs, and a shim whose runtime is executed (runc, crun) clears
// it before it runs anything (internal/shim).
__attribute__((constructor)) static void berth_shim_no_thp(void) {
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
}
*/
import "C"
