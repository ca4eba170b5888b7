package cgroups

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// enableControllers makes every controller available on the cgroup2
// hierarchy usable in dir, by enabling it in the cgroup.subtree_control of
// each ancestor, top-down (a cgroup can only pass on what its parent
// passed to it). It leaves dir's own subtree_control alone: a cgroup2
// cgroup that enables domain controllers for its children may not hold
// processes itself, and dir is about to.
//
// This is best effort, as in runc: an ancestor holding processes (the
// caller's own cgroup, say) refuses with EBUSY, and the container still
// runs, only without those controllers. Whoever sets limits later reports
// the missing control files by name, which is a clearer error than one
// raised here for a limit nobody asked for.
//
// On a hybrid host the cgroup2 side has only the controllers no v1
// hierarchy took (often none), and this does little.
func enableControllers(dir string) {
	var chain []string // ancestors of dir on the cgroup2 hierarchy, root last
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "cgroup.subtree_control")); err != nil {
			break
		}
		chain = append(chain, d)
		if d == "/" {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		d := chain[i]
		avail, err := readFile(filepath.Join(d, "cgroup.controllers"))
		if err != nil {
			return
		}
		on, err := readFile(filepath.Join(d, "cgroup.subtree_control"))
		if err != nil {
			return
		}
		enabled := strings.Fields(on)
		var want []string
		for _, c := range strings.Fields(avail) {
			if !slices.Contains(enabled, c) {
				want = append(want, "+"+c)
			}
		}
		if len(want) == 0 {
			continue
		}
		ctl := filepath.Join(d, "cgroup.subtree_control")
		if writeFile(ctl, strings.Join(want, " ")) == nil {
			continue
		}
		// One write is all or nothing; retry one by one so that a single
		// refusing controller does not take the others with it.
		for _, w := range want {
			_ = writeFile(ctl, w)
		}
	}
}
