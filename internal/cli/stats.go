package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-project/berth/internal/cli/format"
)

const statsFormat = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeaders = map[string]string{
	"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
	"MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

func (c *CLI) statsCommand() *cobra.Command {
	var all, noStream, noTrunc bool
	var tmpl string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			t, table, err := format.Parse(tmpl, statsFormat)
			if err != nil {
				return err
			}
			api, err := c.Client(ctx)
			if err != nil {
				return err
			}
			names := args
			if len(names) == 0 {
				list, err := api.ContainerList(ctx, client.ContainerListOptions{All: all})
				if err != nil {
					return err
				}
				for _, s := range list.Items {
					names = append(names, s.ID)
				}
			}
			var mu sync.Mutex
			latest := map[string]map[string]any{}
			var errs []string
			var wg sync.WaitGroup
			for _, n := range names {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := api.ContainerStats(ctx, n, client.ContainerStatsOptions{Stream: !noStream})
					if err != nil {
						mu.Lock()
						errs = append(errs, err.Error())
						mu.Unlock()
						return
					}
					defer res.Body.Close()
					dec := json.NewDecoder(res.Body)
					for {
						var s container.StatsResponse
						if err := dec.Decode(&s); err != nil {
							return
						}
						mu.Lock()
						latest[n] = statsRow(&s, n, !noTrunc)
						mu.Unlock()
					}
				}()
			}
			print := func(clear bool) error {
				mu.Lock()
				defer mu.Unlock()
				rows := make([]map[string]any, 0, len(names))
				for _, n := range names {
					if r, ok := latest[n]; ok {
						rows = append(rows, r)
					}
				}
				if clear {
					fmt.Fprint(c.Out, "\033[2J\033[H")
				}
				return format.Write(c.Out, t, table, statsHeaders, rows)
			}
			if noStream {
				wg.Wait()
				if err := print(false); err != nil {
					return err
				}
				if len(errs) > 0 {
					return fmt.Errorf("%s", strings.Join(errs, "\n"))
				}
				return nil
			}
			tty, _ := c.outIsTerminal()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			for {
				select {
				case <-tick.C:
					if err := print(tty); err != nil {
						return err
					}
				case <-done:
					return print(tty)
				case <-ctx.Done():
					return nil
				}
			}
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	fl.StringVar(&tmpl, "format", "", "Format output using a custom template")
	return cmd
}

// statsRow computes docker stats' columns from one sample: CPU as a
// share of the host since the previous sample, memory without the page
// cache (inactive_file), network and block I/O totals.
func statsRow(s *container.StatsResponse, ref string, trunc bool) map[string]any {
	id := s.ID
	if trunc {
		id = format.ShortID(id)
	}
	cpu := 0.0
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	online := float64(s.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if cpuDelta > 0 && sysDelta > 0 {
		cpu = cpuDelta / sysDelta * online * 100
	}
	mem := float64(s.MemoryStats.Usage)
	for _, k := range []string{"total_inactive_file", "inactive_file"} {
		if v, ok := s.MemoryStats.Stats[k]; ok && float64(v) < mem {
			mem -= float64(v)
			break
		}
	}
	limit := float64(s.MemoryStats.Limit)
	memPerc := 0.0
	if limit > 0 {
		memPerc = mem / limit * 100
	}
	var rx, tx float64
	for _, n := range s.Networks {
		rx += float64(n.RxBytes)
		tx += float64(n.TxBytes)
	}
	var rd, wr float64
	for _, e := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			rd += float64(e.Value)
		case "write":
			wr += float64(e.Value)
		}
	}
	name := strings.TrimPrefix(s.Name, "/")
	if s.Read.IsZero() {
		return map[string]any{"ID": id, "Container": ref, "Name": name, "CPUPerc": "0.00%", "MemUsage": "0B / 0B",
			"MemPerc": "0.00%", "NetIO": "0B / 0B", "BlockIO": "0B / 0B", "PIDs": "0"}
	}
	return map[string]any{
		"ID":        id,
		"Container": ref,
		"Name":      name,
		"CPUPerc":   fmt.Sprintf("%.2f%%", cpu),
		"MemUsage":  units.BytesSize(mem) + " / " + units.BytesSize(limit),
		"MemPerc":   fmt.Sprintf("%.2f%%", memPerc),
		"NetIO":     units.HumanSizeWithPrecision(rx, 3) + " / " + units.HumanSizeWithPrecision(tx, 3),
		"BlockIO":   units.HumanSizeWithPrecision(rd, 3) + " / " + units.HumanSizeWithPrecision(wr, 3),
		"PIDs":      fmt.Sprint(s.PidsStats.Current),
	}
}
