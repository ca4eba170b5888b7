package cgroups

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// The spec's blockIO fields are v1's blkio controller: a weight
// (10-1000) for the CFQ or BFQ scheduler, per-device weights, and
// per-device throttles. cgroup2's io controller has io.bfq.weight (same
// scale, BFQ only), io.weight (1-10000, for blk-iocost) and io.max.

func (s *setter) blockIO(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil {
		return nil
	}
	if b.Weight == nil && b.LeafWeight == nil && len(b.WeightDevice) == 0 &&
		len(b.ThrottleReadBpsDevice) == 0 && len(b.ThrottleWriteBpsDevice) == 0 &&
		len(b.ThrottleReadIOPSDevice) == 0 && len(b.ThrottleWriteIOPSDevice) == 0 {
		return nil
	}
	dir, unified, ok := s.m.dirFor("blkio", "io")
	if !ok {
		return errNoController("blockIO", "blkio/io")
	}
	if unified {
		return s.blockIOV2(dir, b)
	}
	return s.blockIOV1(dir, b)
}

func devKey(d specs.LinuxBlockIODevice) string {
	return strconv.FormatInt(d.Major, 10) + ":" + strconv.FormatInt(d.Minor, 10)
}

func (s *setter) blockIOV1(dir string, b *specs.LinuxBlockIO) error {
	// CFQ's blkio.weight went with CFQ in Linux 5.0; BFQ offers the same
	// knob as blkio.bfq.weight (in non-root cgroups only).
	weightFile, weightDevFile := "blkio.weight", "blkio.weight_device"
	if exists(dir, "blkio.bfq.weight") {
		weightFile, weightDevFile = "blkio.bfq.weight", "blkio.bfq.weight_device"
	}
	if b.Weight != nil {
		if !exists(dir, weightFile) {
			return fmt.Errorf("set blockIO.weight: no blkio.weight or blkio.bfq.weight (neither CFQ nor BFQ group scheduling in this kernel): %w", errors.ErrUnsupported)
		}
		if err := setCtl(dir, weightFile, strconv.FormatUint(uint64(*b.Weight), 10), "blockIO.weight"); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil {
		if exists(dir, "blkio.leaf_weight") {
			if err := setCtl(dir, "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10), "blockIO.leafWeight"); err != nil {
				return err
			}
		} else {
			s.warn("blockIO.leafWeight ignored: it belongs to the CFQ scheduler, gone since Linux 5.0")
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight != nil {
			v := devKey(wd.LinuxBlockIODevice) + " " + strconv.FormatUint(uint64(*wd.Weight), 10)
			if err := setCtl(dir, weightDevFile, v, "blockIO.weightDevice"); err != nil {
				return err
			}
		}
		if wd.LeafWeight != nil {
			if exists(dir, "blkio.leaf_weight_device") {
				v := devKey(wd.LinuxBlockIODevice) + " " + strconv.FormatUint(uint64(*wd.LeafWeight), 10)
				if err := setCtl(dir, "blkio.leaf_weight_device", v, "blockIO.weightDevice.leafWeight"); err != nil {
					return err
				}
			} else {
				s.warn("blockIO.weightDevice[%s].leafWeight ignored: it belongs to the CFQ scheduler, gone since Linux 5.0", devKey(wd.LinuxBlockIODevice))
			}
		}
	}
	// A rate of 0 removes the device's limit.
	for _, t := range []struct {
		file, field string
		devs        []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", "blockIO.throttleReadBpsDevice", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", "blockIO.throttleWriteBpsDevice", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", "blockIO.throttleReadIOPSDevice", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", "blockIO.throttleWriteIOPSDevice", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			v := devKey(d.LinuxBlockIODevice) + " " + strconv.FormatUint(d.Rate, 10)
			if err := setCtl(dir, t.file, v, t.field); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *setter) blockIOV2(dir string, b *specs.LinuxBlockIO) error {
	// BFQ takes the v1 scale as is; without it, io.weight (blk-iocost)
	// takes a converted value, as runc and crun do.
	bfq := exists(dir, "io.bfq.weight")
	if b.Weight != nil {
		file, v := "io.bfq.weight", uint64(*b.Weight)
		if !bfq {
			file, v = "io.weight", BlkioToIOWeight(v)
		}
		if err := setCtl(dir, file, strconv.FormatUint(v, 10), "blockIO.weight"); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil {
		s.warn("blockIO.leafWeight ignored: cgroup v2 has no leaf weight")
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight != nil {
			file, v := "io.bfq.weight", uint64(*wd.Weight)
			if !bfq {
				file, v = "io.weight", BlkioToIOWeight(v)
			}
			if err := setCtl(dir, file, devKey(wd.LinuxBlockIODevice)+" "+strconv.FormatUint(v, 10), "blockIO.weightDevice"); err != nil {
				return err
			}
		}
		if wd.LeafWeight != nil {
			s.warn("blockIO.weightDevice[%s].leafWeight ignored: cgroup v2 has no leaf weight", devKey(wd.LinuxBlockIODevice))
		}
	}
	for _, t := range []struct {
		key, field string
		devs       []specs.LinuxThrottleDevice
	}{
		{"rbps", "blockIO.throttleReadBpsDevice", b.ThrottleReadBpsDevice},
		{"wbps", "blockIO.throttleWriteBpsDevice", b.ThrottleWriteBpsDevice},
		{"riops", "blockIO.throttleReadIOPSDevice", b.ThrottleReadIOPSDevice},
		{"wiops", "blockIO.throttleWriteIOPSDevice", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			// v1 removes a limit with 0; io.max spells it "max".
			rate := "max"
			if d.Rate != 0 {
				rate = strconv.FormatUint(d.Rate, 10)
			}
			if err := setCtl(dir, "io.max", devKey(d.LinuxBlockIODevice)+" "+t.key+"="+rate, t.field); err != nil {
				return err
			}
		}
	}
	return nil
}

// BlkioToIOWeight maps the v1 weight [10, 1000] linearly onto io.weight
// [1, 10000], as runc and crun do.
func BlkioToIOWeight(w uint64) uint64 {
	w = min(max(w, 10), 1000)
	return 1 + (w-10)*9999/990
}
