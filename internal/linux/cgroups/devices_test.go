package cgroups

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

func TestParseDeviceRules(t *testing.T) {
	good := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rw"},
		{Allow: true, Type: "b", Major: ptr[int64](-1), Minor: ptr[int64](0), Access: ""},
		{Allow: true, Type: "a", Major: ptr[int64](136), Access: "m"},
	}
	rules, err := parseDeviceRules(good)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		got = append(got, fmt.Sprint(r.allow, " ", r))
	}
	want := []string{"false a *:* rwm", "true c 1:3 rw", "true b *:0 rwm", "true a 136:* m"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range []specs.LinuxDeviceCgroup{
		{Type: "p"},
		{Type: "c", Access: "rx"},
		{Type: "c", Major: ptr[int64](-2)},
		{Type: "c", Minor: ptr[int64](1 << 40)},
	} {
		if _, err := parseDeviceRules([]specs.LinuxDeviceCgroup{bad}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// runProgram interprets the instructions deviceProgram emits, with the
// kernel's semantics, against a bpf_cgroup_dev_ctx.
func runProgram(t *testing.T, prog []bpfInsn, typ, major, minor, acc uint32) uint64 {
	t.Helper()
	var reg [11]uint64
	ctx := [3]uint32{acc<<16 | typ, major, minor}
	ctxReg := uint64(1 << 40) // a marker standing for the context pointer
	reg[1] = ctxReg
	for pc, steps := 0, 0; ; pc, steps = pc+1, steps+1 {
		if pc < 0 || pc >= len(prog) || steps > 100000 {
			t.Fatalf("pc %d out of the program (%d insns)", pc, len(prog))
		}
		in := prog[pc]
		d, s := in.dst(), in.src()
		switch in.code {
		case opLdxW:
			if reg[s] != ctxReg || in.off%4 != 0 || in.off < 0 || in.off > 8 {
				t.Fatalf("insn %d: load from r%d+%d", pc, s, in.off)
			}
			reg[d] = uint64(ctx[in.off/4])
		case opMov32X:
			reg[d] = uint64(uint32(reg[s]))
		case opAnd32K:
			reg[d] = uint64(uint32(reg[d]) & uint32(in.imm))
		case opRsh32K:
			reg[d] = uint64(uint32(reg[d]) >> uint32(in.imm))
		case opMov64K:
			reg[d] = uint64(int64(in.imm))
		case opJeqK:
			if reg[d] == uint64(int64(in.imm)) {
				pc += int(in.off)
			}
		case opJneK:
			if reg[d] != uint64(int64(in.imm)) {
				pc += int(in.off)
			}
		case opExit:
			return reg[0]
		default:
			t.Fatalf("insn %d: unknown opcode %#x", pc, in.code)
		}
	}
}

// checkReachable applies the verifier's rule that every instruction is
// reachable and no jump leaves the program.
func checkReachable(t *testing.T, prog []bpfInsn) {
	t.Helper()
	seen := make([]bool, len(prog))
	var walk func(int)
	walk = func(pc int) {
		for ; pc < len(prog) && !seen[pc]; pc++ {
			seen[pc] = true
			switch prog[pc].code {
			case opExit:
				return
			case opJeqK, opJneK:
				to := pc + 1 + int(prog[pc].off)
				if to <= pc || to >= len(prog) {
					t.Fatalf("insn %d jumps to %d", pc, to)
				}
				walk(to)
			}
		}
		if pc >= len(prog) {
			t.Fatalf("program falls off its end")
		}
	}
	walk(0)
	for pc, ok := range seen {
		if !ok {
			t.Fatalf("insn %d unreachable", pc)
		}
	}
}

func randomRules(r *rand.Rand) []devRule {
	n := r.IntN(7)
	var rules []devRule
	for range n {
		d := devRule{allow: r.IntN(2) == 0, typ: "acb"[r.IntN(3)], major: wildcard, minor: wildcard, acc: uint8(1 + r.IntN(7))}
		if r.IntN(4) == 0 {
			d.acc = accAll
		}
		if r.IntN(2) == 0 {
			d.major = int64(r.IntN(3))
		}
		if r.IntN(2) == 0 {
			d.minor = int64(r.IntN(3))
		}
		rules = append(rules, d)
	}
	return rules
}

// The program must agree with the reference meaning of the rules on every
// device and access, for the usual lists and for random ones.
func TestDeviceProgramMatchesRules(t *testing.T) {
	lists := [][]devRule{
		nil,
		{{allow: false, typ: 'a', major: wildcard, minor: wildcard, acc: accAll}},
		{{allow: true, typ: 'a', major: wildcard, minor: wildcard, acc: accAll}},
		{
			{allow: false, typ: 'a', major: wildcard, minor: wildcard, acc: accAll},
			{allow: true, typ: 'c', major: 1, minor: 2, acc: accAll},
			{allow: true, typ: 'c', major: wildcard, minor: wildcard, acc: accMknod},
			{allow: false, typ: 'c', major: 1, minor: 2, acc: accWrite},
		},
		{
			{allow: true, typ: 'a', major: wildcard, minor: wildcard, acc: accAll},
			{allow: false, typ: 'b', major: 2, minor: wildcard, acc: accRead},
		},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		lists = append(lists, randomRules(r))
	}
	for _, rules := range lists {
		prog, err := deviceProgram(rules)
		if err != nil {
			t.Fatal(err)
		}
		checkReachable(t, prog)
		for _, typ := range []byte{'c', 'b'} {
			for major := range int64(3) {
				for minor := range int64(3) {
					for acc := uint8(0); acc <= accAll; acc++ {
						want := allowed(rules, typ, major, minor, acc)
						bt := uint32(devChar)
						if typ == 'b' {
							bt = devBlock
						}
						got := runProgram(t, prog, bt, uint32(major), uint32(minor), uint32(acc)) == 1
						if got != want {
							t.Fatalf("rules %v, %c %d:%d %s: program says %v, rules say %v", rules, typ, major, minor, accessString(acc), got, want)
						}
					}
				}
			}
		}
	}
}

func TestAllowedLastRuleWins(t *testing.T) {
	rules, err := parseDeviceRules([]specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Access: "rwm"},
		{Allow: false, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "w"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ          byte
		major, minor int64
		acc          uint8
		want         bool
	}{
		{'c', 1, 3, accRead | accWrite, true},
		{'c', 1, 5, accRead, true},
		{'c', 1, 5, accRead | accWrite, false}, // the write bit is denied
		{'b', 8, 0, accRead, false},
	} {
		if got := allowed(rules, tc.typ, tc.major, tc.minor, tc.acc); got != tc.want {
			t.Errorf("%c %d:%d %s: %v, want %v", tc.typ, tc.major, tc.minor, accessString(tc.acc), got, tc.want)
		}
	}
}

func TestV1Emulation(t *testing.T) {
	rules, err := parseDeviceRules([]specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "r"},
		{Allow: true, Type: "c", Major: ptr[int64](136), Access: "rwm"},
		{Allow: true, Type: "a", Access: "m"},
		{Allow: false, Type: "c", Major: ptr[int64](136), Access: "w"},
	})
	if err != nil {
		t.Fatal(err)
	}
	writes := v1Writes(rules)
	var vals []string
	for _, w := range writes {
		vals = append(vals, w.file()+" "+w.value())
	}
	want := []string{
		"devices.deny a", "devices.deny a",
		"devices.allow c 1:3 rwm", "devices.allow c 1:3 r", "devices.allow c 136:* rwm",
		"devices.allow c *:* m", "devices.allow b *:* m", "devices.deny c 136:* w",
	}
	if !slices.Equal(vals, want) {
		t.Fatalf("writes\n%q\nwant\n%q", vals, want)
	}
	var st v1State
	for _, w := range writes {
		if !st.apply(w) {
			t.Errorf("%s %s reported ineffective", w.file(), w.value())
		}
	}
	if got, want := strings.Join(st.list(), ","), "c 1:3 rwm,c 136:* rm,c *:* m,b *:* m"; got != want {
		t.Errorf("list %q, want %q", got, want)
	}
	if !sameLines("b *:* m\nc 1:3 rwm\nc *:* m\nc 136:* rm\n", st.list()) {
		t.Error("sameLines: same set in another order differs")
	}

	// A deny narrower than the wildcard before it does nothing on v1.
	st = v1State{}
	st.apply(v1Write{whole: true})
	st.apply(v1Write{allow: true, rule: devRule{typ: 'c', major: wildcard, minor: wildcard, acc: accAll}})
	if st.apply(v1Write{allow: false, rule: devRule{typ: 'c', major: 1, minor: 5, acc: accWrite}}) {
		t.Error("hole in a wildcard not reported")
	}
}
