package images

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/dircache"
	"github.com/berth-project/berth/test/fixture"
	"golang.org/x/sys/unix"
)

// unavailableError marks a missing prerequisite of the machine rather than
// a bug: the test skips instead of failing (see check).
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

func unavailable(format string, args ...any) error {
	return &unavailableError{fmt.Errorf(format, args...)}
}

// requireFixtures reports whether a missing prerequisite must fail the
// test: the variable test/fixture reads too, so CI sets it once.
func requireFixtures() bool { return os.Getenv("BERTH_TEST_REQUIRE_FIXTURES") != "" }

// check ends the test on err: a skip for a missing prerequisite, a failure
// otherwise.
func check(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var u *unavailableError
	if errors.As(err, &u) && !requireFixtures() {
		t.Skipf("%s unavailable (set BERTH_TEST_REQUIRE_FIXTURES=1 to fail instead): %v", what, err)
	}
	t.Fatalf("%s: %v", what, err)
}

// cacheKey hashes a recipe version and the identities of what an entry is
// built from into the 12 hex digits that name the entry.
func cacheKey(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n") + "\n"))
	return hex.EncodeToString(sum[:])[:12]
}

// cached returns the entry images-<kind>-<key> of the cache root, building
// it with build when it is missing. Builds of one kind are serialised
// across processes by a lock file, so parallel test binaries wait for one
// build instead of each running it (debootstrap takes minutes). Stale
// entries of the kind are pruned.
func cached(kind, key string, build func(dir string) error) (string, error) {
	root, err := fixture.CacheRoot()
	if err != nil {
		return "", err
	}
	final := filepath.Join(root, "images-"+kind+"-"+key)
	if _, err := os.Stat(final); err != nil {
		unlock, err := lockFile(filepath.Join(root, ".images-"+kind+".lock"))
		if err != nil {
			return "", err
		}
		err = dircache.Publish(final, build)
		unlock()
		if err != nil {
			return "", err
		}
	}
	dircache.Touch(final)
	dircache.Prune(root, "images-"+kind+"-*", final)
	return final, nil
}

// lockFile takes an exclusive flock on path, waiting for it; the returned
// function releases it. The kernel releases it too when the process dies.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open cache lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return func() { f.Close() }, nil
}
