package main

import "runtime"

// berthd's packages run some work on goroutines locked to a thread that
// then leaves the process's shared state (unshare of the mount namespace
// or of CLONE_FS for a chdir) and are never unlocked, so that Go ends the
// thread with them. The main thread is the one Go cannot end: it would be
// parked in its altered state instead, and /proc/self reads the main
// thread's view. Keeping the main goroutine on it for good means no such
// goroutine can ever land there.
func init() { runtime.LockOSThread() }
