package archive

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxID is the largest id a file may have: (uid_t)-1 means "leave
// unchanged" to chown(2), so a header carrying it must not pass as an id.
const maxID = 1<<32 - 2

// toHost maps a container id to the host id it is stored as; an empty
// mapping is the identity.
func toHost(m []specs.LinuxIDMapping, id int64) (int, error) {
	if id < 0 || id > maxID {
		return 0, fmt.Errorf("%w: id %d out of range", ErrInvalid, id)
	}
	if len(m) == 0 {
		return int(id), nil
	}
	for _, e := range m {
		if uint64(id) >= uint64(e.ContainerID) && uint64(id) < uint64(e.ContainerID)+uint64(e.Size) {
			return int(uint64(e.HostID) + uint64(id) - uint64(e.ContainerID)), nil
		}
	}
	return 0, fmt.Errorf("%w: id %d is outside the id mapping", ErrInvalid, id)
}

// toContainer maps a host id back to the container id it stands for.
func toContainer(m []specs.LinuxIDMapping, id uint32) (int, error) {
	if len(m) == 0 {
		return int(id), nil
	}
	for _, e := range m {
		if uint64(id) >= uint64(e.HostID) && uint64(id) < uint64(e.HostID)+uint64(e.Size) {
			return int(uint64(e.ContainerID) + uint64(id) - uint64(e.HostID)), nil
		}
	}
	return 0, fmt.Errorf("host id %d is outside the id mapping", id)
}
