package shim

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// spareFor waits until the pool holds a standby for binary and env.
func spareFor(t *testing.T, binary string, env []string) *standby {
	t.Helper()
	k := standbyKey(binary, env)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		standbys.mu.Lock()
		sb := standbys.spares[k]
		standbys.mu.Unlock()
		if sb != nil {
			return sb
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no standby shim was started")
	return nil
}

// testEnv is an environment of the test's own, so that its standbys are
// not taken by parallel tests.
func testEnv(t *testing.T) []string {
	return append(os.Environ(), "BERTH_SHIM_TEST_STANDBY="+t.Name())
}

// A standby whose spawner goes away exits; one given a command line it
// cannot serve reports why on its descriptor, as any shim would, and
// exits.
func TestStandbyEndsWithoutContainer(t *testing.T) {
	bin := shimBinary(t)
	sb, err := startStandby(bin, testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	sb.drop()
	if err := waitGone(sb.proc.Pid, 10*time.Second); err != nil {
		t.Fatalf("standby without a spawner: %v", err)
	}

	sb, err = startStandby(bin, testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = sb.assign(ctx, SpawnOptions{Binary: bin, ID: "c1", Bundle: "relative/bundle", Runtime: "/bin/true"})
	if err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Fatalf("standby given a relative bundle: %v", err)
	}
	if err := waitGone(sb.proc.Pid, 10*time.Second); err != nil {
		t.Fatalf("standby that refused its container: %v", err)
	}
}

func TestStandbyKey(t *testing.T) {
	if standbyKey("/b", nil) == standbyKey("/b", []string{}) {
		t.Error("an inherited environment and an empty one share standbys")
	}
	if standbyKey("/b", []string{"A=1"}) == standbyKey("/b", []string{"A=2"}) ||
		standbyKey("/a", nil) == standbyKey("/b", nil) {
		t.Error("different binaries or environments share standbys")
	}
}
