package cli

import (
	"fmt"
	"math/big"
	"strconv"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// updateCommand is "berth update": new resource limits and restart
// policy for containers, with docker update's flags. Only the flags
// given are sent (zero keeps a limit as it is, as with docker); each
// container updated is printed as named, and the errors come together
// at the end.
func (c *CLI) updateCommand() *cobra.Command {
	var (
		memory, memoryReservation, memorySwap bytesValue
		cpus                                  nanoCPUsValue
		cpuShares, cpuPeriod, cpuQuota, pids  int64
		cpuRtPeriod, cpuRtRuntime             int64
		blkioWeight                           uint16
		cpusetCPUs, cpusetMems, restart       string
	)
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().NFlag() == 0 {
				return &StatusError{Status: 1, Message: "You must provide one or more flags when using this command."}
			}
			var u client.ContainerUpdateOptions
			r := &container.Resources{
				BlkioWeight:        blkioWeight,
				CPUShares:          cpuShares,
				CPUPeriod:          cpuPeriod,
				CPUQuota:           cpuQuota,
				CPURealtimePeriod:  cpuRtPeriod,
				CPURealtimeRuntime: cpuRtRuntime,
				NanoCPUs:           int64(cpus),
				CpusetCpus:         cpusetCPUs,
				CpusetMems:         cpusetMems,
				Memory:             int64(memory),
				MemoryReservation:  int64(memoryReservation),
				MemorySwap:         int64(memorySwap),
			}
			if cmd.Flags().Changed("pids-limit") {
				r.PidsLimit = &pids
			}
			u.Resources = r
			if cmd.Flags().Changed("restart") {
				p, err := parseRestart(restart)
				if err != nil {
					return err
				}
				u.RestartPolicy = &p
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			return c.eachContainer(cmd.Context(), args, func(n string) error {
				res, err := api.ContainerUpdate(cmd.Context(), n, u)
				for _, w := range res.Warnings {
					fmt.Fprintln(c.Err, w)
				}
				return err
			})
		},
	}
	f := cmd.Flags()
	f.Uint16Var(&blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	f.Int64Var(&cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	f.Int64Var(&cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	f.Int64Var(&cpuRtPeriod, "cpu-rt-period", 0, "Limit the CPU real-time period in microseconds")
	f.Int64Var(&cpuRtRuntime, "cpu-rt-runtime", 0, "Limit the CPU real-time runtime in microseconds")
	f.Int64VarP(&cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Var(&cpus, "cpus", "Number of CPUs")
	f.StringVar(&cpusetCPUs, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	f.VarP(&memory, "memory", "m", "Memory limit")
	f.Var(&memoryReservation, "memory-reservation", "Memory soft limit")
	f.Var(&memorySwap, "memory-swap", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	f.Int64Var(&pids, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	f.StringVar(&restart, "restart", "", "Restart policy to apply when a container exits")
	return cmd
}

// bytesValue is a size flag in docker's units ("512m", "1g"); -1 is
// unlimited (--memory-swap).
type bytesValue int64

func (b *bytesValue) String() string {
	if *b == 0 {
		return ""
	}
	return strconv.FormatInt(int64(*b), 10)
}

func (b *bytesValue) Set(s string) error {
	if s == "-1" {
		*b = -1
		return nil
	}
	n, err := units.RAMInBytes(s)
	if err != nil {
		return err
	}
	*b = bytesValue(n)
	return nil
}

func (b *bytesValue) Type() string { return "bytes" }

// nanoCPUsValue is --cpus: a decimal number of CPUs, held in
// billionths without the rounding of a float.
type nanoCPUsValue int64

func (n *nanoCPUsValue) String() string {
	if *n == 0 {
		return ""
	}
	return big.NewRat(int64(*n), 1e9).FloatString(3)
}

func (n *nanoCPUsValue) Set(s string) error {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return fmt.Errorf("failed to parse %v as a rational number", s)
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return fmt.Errorf("value is too precise")
	}
	*n = nanoCPUsValue(nano.Num().Int64())
	return nil
}

func (n *nanoCPUsValue) Type() string { return "decimal" }
