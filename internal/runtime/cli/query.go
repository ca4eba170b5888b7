package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-project/berth/internal/runtime"
)

func cmdState(g *globals, args []string) error {
	fs := flags("state")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	c, err := runtime.Load(g.root, id)
	if err != nil {
		return err
	}
	defer c.Close()
	return printJSON(c.State())
}

func printJSON(v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(os.Stdout, "%s\n", data)
	return err
}

func cmdList(g *globals, args []string) error {
	fs := flags("list")
	var format string
	var quiet bool
	fs.StringVar(&format, "format", "table", "table or json")
	fs.StringVar(&format, "f", "table", "table or json")
	fs.BoolVar(&quiet, "quiet", false, "print only ids")
	fs.BoolVar(&quiet, "q", false, "print only ids")
	if err := parse(fs, args); err != nil {
		return err
	}
	states, err := runtime.List(g.root)
	if err != nil {
		return err
	}
	if quiet {
		for _, s := range states {
			fmt.Println(s.ID)
		}
		return nil
	}
	switch format {
	case "json":
		// The owner named as in the table, as runc names it.
		if states == nil {
			states = []*runtime.State{}
		}
		for _, s := range states {
			s.Owner = owner(s.Owner)
		}
		data, err := json.Marshal(states)
		if err != nil {
			return err
		}
		fmt.Printf("%s\n", data)
		return nil
	case "table":
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range states {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle,
				s.Created.Format(time.RFC3339Nano), owner(s.Owner))
		}
		return w.Flush()
	}
	return usagef("unknown --format %q (table or json)", format)
}

func owner(o string) string {
	if o == "" {
		return "root"
	}
	return o
}

func cmdPs(g *globals, args []string) error {
	fs := flags("ps")
	var format string
	fs.StringVar(&format, "format", "table", "table or json")
	fs.StringVar(&format, "f", "table", "table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return usagef("expected a container id")
	}
	c, err := runtime.Load(g.root, fs.Arg(0))
	if err != nil {
		return err
	}
	pids, err := c.Pids()
	c.Close()
	if err != nil {
		return err
	}
	switch format {
	case "json":
		if pids == nil {
			pids = []int{}
		}
		data, err := json.Marshal(pids)
		if err != nil {
			return err
		}
		fmt.Printf("%s\n", data)
		return nil
	case "table":
	default:
		return usagef("unknown --format %q (table or json)", format)
	}
	// Like runc: ps(1) with the caller's options, keeping the header and
	// the lines whose PID column is one of the container's.
	psArgs := fs.Args()[1:]
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("run ps %s: %w", strings.Join(psArgs, " "), err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) == 0 {
		return nil
	}
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return fmt.Errorf("ps output has no PID column")
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= col {
			continue
		}
		if p, err := strconv.Atoi(f[col]); err == nil && want[p] {
			fmt.Println(l)
		}
	}
	return nil
}
