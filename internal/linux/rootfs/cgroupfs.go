package rootfs

// CgroupView is what a container's "cgroup" mount shows.
type CgroupView struct {
	// Namespaced is true when the container has its own cgroup namespace:
	// cgroup filesystems mounted from inside show the container's cgroup
	// as their root. Without one, the container's own directories are
	// bind-mounted instead, so the host's tree stays hidden.
	Namespaced bool
	// Hierarchies of the host, in mount order.
	Hierarchies []CgroupHierarchy
}

// CgroupHierarchy is one host hierarchy as the container sees it.
type CgroupHierarchy struct {
	// Name is the directory under the cgroup mount: "cpu,cpuacct",
	// "systemd", "unified"; empty for the only hierarchy of a v2 host.
	Name string
	// Options for mount(2) on v1 ("cpu,cpuacct", "none,name=systemd").
	Options string
	Unified bool
	// HostPath is the container's cgroup directory in this hierarchy.
	HostPath string
}
