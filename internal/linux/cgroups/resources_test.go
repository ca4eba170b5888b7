package cgroups

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestSharesToWeight(t *testing.T) {
	for _, tc := range []struct{ shares, weight uint64 }{
		{0, 0}, // unset
		{1, 1},
		{2, 1},
		{1024, 100}, // the defaults meet
		{262144, 10000},
		{1 << 20, 10000},
	} {
		if got := SharesToWeight(tc.shares); got != tc.weight {
			t.Errorf("SharesToWeight(%d) = %d, want %d", tc.shares, got, tc.weight)
		}
	}
	prev := uint64(0)
	for s := uint64(2); s <= 262144; s += 37 {
		w := SharesToWeight(s)
		if w < prev || w < 1 || w > 10000 {
			t.Fatalf("SharesToWeight(%d) = %d after %d: not monotonic within [1, 10000]", s, w, prev)
		}
		prev = w
	}
}

func TestBlkioToIOWeight(t *testing.T) {
	for _, tc := range []struct{ in, out uint64 }{{10, 1}, {1000, 10000}, {500, 4950}, {1, 1}, {5000, 10000}} {
		if got := BlkioToIOWeight(tc.in); got != tc.out {
			t.Errorf("BlkioToIOWeight(%d) = %d, want %d", tc.in, got, tc.out)
		}
	}
}

func TestSwapToV2(t *testing.T) {
	for _, tc := range []struct {
		swap, limit int64
		want        string
		err         bool
	}{
		{0, 0, "", false},
		{0, 100, "", false},
		{0, -1, "max", false},
		{-1, 100, "max", false},
		{300, 100, "200", false},
		{100, 100, "0", false}, // memory+swap == memory: no swap
		{50, 100, "", true},
		{300, 0, "", true},
		{300, -1, "", true},
	} {
		got, err := swapToV2(tc.swap, tc.limit)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("swapToV2(%d, %d) = %q, %v; want %q, error %v", tc.swap, tc.limit, got, err, tc.want, tc.err)
		}
	}
}

func TestHugePageSizes(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"hugepages-1048576kB", "hugepages-2048kB", "hugepages-64kB", "other"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := hugePagesDir
	hugePagesDir = dir
	t.Cleanup(func() { hugePagesDir = old })
	got, err := HugePageSizes()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"64KB", "2MB", "1GB"}; !slices.Equal(got, want) {
		t.Errorf("HugePageSizes() = %q, want %q", got, want)
	}
	if n := hugePageName(32768); n != "32MB" {
		t.Errorf("hugePageName(32768) = %q", n)
	}
}

func TestCheckUnifiedKey(t *testing.T) {
	for _, k := range []string{"memory.max", "io.weight", "cgroup.max.depth"} {
		if err := checkUnifiedKey(k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
	for _, k := range []string{"", ".", "..", "../memory.max", "a/b", "cgroup.procs", "cgroup.kill", "x\x00"} {
		if err := checkUnifiedKey(k); err == nil {
			t.Errorf("%q accepted", k)
		}
	}
}

func TestParsers(t *testing.T) {
	kv := parseFlatKeyed("usage_usec 12\nuser_usec 5\nsome garbage line\nnr_periods 0\n")
	if !reflect.DeepEqual(kv, map[string]uint64{"usage_usec": 12, "user_usec": 5, "nr_periods": 0}) {
		t.Errorf("parseFlatKeyed: %v", kv)
	}
	cpus, err := parseCPUList("0-2,5,7-8\n")
	if err != nil || !slices.Equal(cpus, []uint16{0, 1, 2, 5, 7, 8}) {
		t.Errorf("parseCPUList: %v, %v", cpus, err)
	}
	if _, err := parseCPUList("3-1"); err == nil {
		t.Error("parseCPUList accepted 3-1")
	}
	user, sys, err := parseUsageAll("cpu user system\n0 10 20\n1 30 40\n")
	if err != nil || !slices.Equal(user, []uint64{10, 30}) || !slices.Equal(sys, []uint64{20, 40}) {
		t.Errorf("parseUsageAll: %v %v %v", user, sys, err)
	}
	b, err := parseBlkio("254:0 Read 4096\n254:0 Write 0\n254:0 Total 4096\nTotal 4096\n")
	want := []BlkioEntry{{254, 0, "Read", 4096}, {254, 0, "Write", 0}, {254, 0, "Total", 4096}}
	if err != nil || !reflect.DeepEqual(b, want) {
		t.Errorf("parseBlkio: %v, %v", b, err)
	}
	if b, err := parseBlkio("8:16 77\n"); err != nil || !reflect.DeepEqual(b, []BlkioEntry{{8, 16, "", 77}}) {
		t.Errorf("parseBlkio without op: %v, %v", b, err)
	}
	bytes, ios, err := parseIOStat("254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6 cost.usage=9\n")
	if err != nil ||
		!reflect.DeepEqual(bytes, []BlkioEntry{{254, 0, "Read", 1}, {254, 0, "Write", 2}, {254, 0, "Discard", 5}}) ||
		!reflect.DeepEqual(ios, []BlkioEntry{{254, 0, "Read", 3}, {254, 0, "Write", 4}, {254, 0, "Discard", 6}}) {
		t.Errorf("parseIOStat: %v %v %v", bytes, ios, err)
	}
	p, err := parsePSI("some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n")
	if err != nil || p.Some.Avg10 != 1.5 || p.Some.Total != 1234 || p.Full.Total != 7 {
		t.Errorf("parsePSI: %+v, %v", p, err)
	}
	for _, tc := range []struct {
		in   string
		want uint64
	}{{"max", maxUint}, {"-1", 0}, {"42", 42}} {
		if got, err := parseUint(tc.in, "x"); err != nil || got != tc.want {
			t.Errorf("parseUint(%q) = %d, %v", tc.in, got, err)
		}
	}
}

// The JSON names are the contract with go-runc and containerd: check them
// against runc's `events --stats` output.
func TestStatsJSON(t *testing.T) {
	st := Stats{
		CPU: CPUStats{
			Usage:      CPUUsage{Total: 1, Percpu: []uint64{1}, Kernel: 2, User: 3},
			Throttling: Throttling{Periods: 4, ThrottledPeriods: 5, ThrottledTime: 6},
		},
		Memory: MemoryStats{
			Usage: MemoryEntry{Limit: 7, Usage: 8, Max: 9, Failcnt: 10},
			Raw:   map[string]uint64{"cache": 11},
		},
		Pids:    PidsStats{Current: 12, Limit: 13},
		Blkio:   BlkioStats{IoServiceBytesRecursive: []BlkioEntry{{Major: 8, Minor: 0, Op: "Read", Value: 14}}},
		Hugetlb: map[string]HugetlbStats{"2MB": {Usage: 15, Max: 16, Failcnt: 17}},
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"cpu":{"usage":{"total":1,"percpu":[1],"kernel":2,"user":3},"throttling":{"periods":4,"throttledPeriods":5,"throttledTime":6}}`,
		`"memory":{"usage":{"limit":7,"usage":8,"max":9,"failcnt":10},"swap":{"limit":0,"failcnt":0},"kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0},"raw":{"cache":11}}`,
		`"pids":{"current":12,"limit":13}`,
		`"blkio":{"ioServiceBytesRecursive":[{"major":8,"op":"Read","value":14}]}`,
		`"hugetlb":{"2MB":{"usage":15,"max":16,"failcnt":17}}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s\n%s", want, b)
		}
	}
}

func TestMergeByDevice(t *testing.T) {
	bfq := []BlkioEntry{{8, 0, "Read", 10}, {8, 0, "Total", 10}, {7, 0, "Read", 0}, {7, 0, "Total", 0}}
	thr := []BlkioEntry{{7, 0, "Read", 50}, {7, 0, "Total", 50}, {8, 0, "Read", 10}, {8, 0, "Total", 10}}
	got := mergeByDevice(bfq, thr)
	want := []BlkioEntry{{8, 0, "Read", 10}, {8, 0, "Total", 10}, {7, 0, "Read", 50}, {7, 0, "Total", 50}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mergeByDevice = %v, want %v", got, want)
	}
}
