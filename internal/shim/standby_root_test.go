package shim

import (
	"syscall"
	"testing"
	"time"
)

// After a spawn, a standby waits for the next container and serves it;
// one found dead is replaced by a fresh start; one the spawner drops
// exits. NoStandby neither takes nor starts one.
func TestStandbyServesNextSpawn(t *testing.T) {
	t.Parallel()
	env := testEnv(t)
	withEnv := func(r *rig) { r.opts.Env = env }

	r1 := newRig(t, []string{"/bin/probe", "sleep", "1000"}, withEnv)
	r1.spawn()
	sb := spareFor(t, r1.opts.Binary, env)

	r2 := newRig(t, []string{"/bin/probe", "exit", "3"}, withEnv)
	c2 := r2.spawn()
	if pid := r2.shimPid(); pid != sb.proc.Pid {
		t.Fatalf("the second container's shim is %d, want the standby %d", pid, sb.proc.Pid)
	}
	if err := c2.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if e := r2.mustWait(3); e == nil {
		t.Fatal("no exit")
	}

	// The next standby dies before it is taken: the spawn starts a shim
	// afresh.
	dead := spareFor(t, r1.opts.Binary, env)
	dead.proc.Kill()
	// Until its last thread has exited, a killed process still holds its
	// descriptors (a zombie leader is not enough): its pidfd tells.
	for deadline := time.Now().Add(10 * time.Second); !dead.gone(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the killed standby is still there")
		}
	}
	r3 := newRig(t, []string{"/bin/probe", "exit", "0"}, withEnv)
	c3 := r3.spawn()
	if pid := r3.shimPid(); pid == dead.proc.Pid || pid <= 0 {
		t.Fatalf("the third container's shim is %d (the dead standby was %d)", pid, dead.proc.Pid)
	}
	if err := c3.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	r3.mustWait(0)

	// Dropped by its spawner, the standby exits.
	last := spareFor(t, r1.opts.Binary, env)
	standbys.take(r1.opts.Binary, env)
	last.drop()
	if err := waitGone(last.proc.Pid, 10*time.Second); err != nil {
		t.Fatalf("dropped standby: %v", err)
	}

	r4 := newRig(t, []string{"/bin/probe", "exit", "0"}, withEnv, func(r *rig) { r.opts.NoStandby = true })
	c4 := r4.spawn()
	if err := c4.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	r4.mustWait(0)
	time.Sleep(200 * time.Millisecond)
	if sb := standbys.take(r1.opts.Binary, env); sb != nil {
		sb.proc.Signal(syscall.SIGKILL)
		t.Fatal("a spawn with NoStandby started a standby")
	}
}
