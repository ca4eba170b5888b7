package runtime

import (
	"os/exec"
	"testing"
	"time"
)

// waitExitedWithin fails the test when WaitExited(pid) has not returned
// after d.
func waitExitedWithin(t *testing.T, pid int, d time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		WaitExited(pid)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: WaitExited still waits %v later", what, d)
	}
}

// A process that exited before the wait began (a zombie): the poller saw
// its pidfd readable before the wait and reports no new edge, so only a
// wait that asks for the level returns. Repeated, because whether the
// poller consumed that edge first depends on the scheduler.
func TestWaitExitedAfterExit(t *testing.T) {
	for i := 0; i < 300; i++ {
		cmd := exec.Command("/bin/true")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		for deadline := time.Now().Add(5 * time.Second); ; {
			if _, state, err := procStat(pid); err == nil && state == 'Z' {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("process %d did not exit", pid)
			}
			time.Sleep(50 * time.Microsecond)
		}
		waitExitedWithin(t, pid, 5*time.Second, "exited before the wait")
		cmd.Wait()
	}
}

// A process that exits while WaitExited waits, and not before.
func TestWaitExitedWhileRunning(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "0.3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitExitedWithin(t, cmd.Process.Pid, 10*time.Second, "exits during the wait")
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("WaitExited returned after %v, before the process exited", d)
	}
	cmd.Wait()
}
