package runtime

import "sort"

// Pids lists every process of the container's cgroup, host pids, sorted.
func (c *Container) Pids() ([]int, error) {
	m, err := c.cgroups()
	if err != nil {
		return nil, err
	}
	pids, err := m.Pids()
	if err != nil {
		return nil, err
	}
	sort.Ints(pids)
	return pids, nil
}
