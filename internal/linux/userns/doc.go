// Package userns makes user namespaces with given id mappings and hands
// them out as descriptors, for idmapped mounts (mount_setattr(2) takes a
// user namespace descriptor, and only a process can create one).
//
// A short-lived copy of the running binary is started in a new user
// namespace; the parent writes its maps, opens /proc/PID/ns/user and kills
// it. Binaries that use New must call Hold at the very start of main.
//
// Importers: internal/linux/rootfs, cmd/berth-runtime (Hold).
package userns
