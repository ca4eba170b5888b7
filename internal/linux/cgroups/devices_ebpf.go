package cgroups

import (
	"encoding/binary"
	"fmt"
)

// On cgroup2 there is no devices controller: the kernel runs the
// BPF_PROG_TYPE_CGROUP_DEVICE programs attached to the task's cgroup (and
// its ancestors) on every open and mknod of a device node, and refuses
// the access unless each returns 1. The program sees a
// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
// where access_type is (access << 16) | type, type BPF_DEVCG_DEV_BLOCK (1)
// or BPF_DEVCG_DEV_CHAR (2), access the BPF_DEVCG_ACC_* bits (mknod 1,
// read 2, write 4).
//
// The program is assembled here by hand: it needs eight instruction
// kinds, and the cilium/ebpf library that would assemble it would add a
// dependency and weight to the runtime binary, which is copied on every
// container start. Its shape, for the spec's rules r1..rn:
//
//	r2 = ctx->access_type; r3 = r2 & 0xffff (type); r4 = r2 >> 16 (access)
//	r5 = ctx->major; r1 = ctx->minor
//	if r4 == 0: return 1          (nothing asked, nothing to refuse)
//	rn's block, then rn-1's, ... then r1's, then "return 0"
//
// A block skips to the next one unless the device matches the rule. A
// deny block then returns 0 if any still-undecided bit of r4 is one it
// names. An allow block clears its bits from r4 and returns 1 once none is
// left. Going from the last rule to the first, each access bit is thus
// decided by the last rule naming it, and "allowed" in devices.go is the
// same function written in Go. A rule matching every device with every
// access ends the program: what follows would be unreachable, which the
// verifier refuses.

// eBPF opcodes used (include/uapi/linux/bpf.h, bpf_common.h).
const (
	opLdxW    = 0x01 | 0x60 | 0x00 // BPF_LDX | BPF_MEM | BPF_W
	opMov32X  = 0x04 | 0xb0 | 0x08 // BPF_ALU | BPF_MOV | BPF_X
	opAnd32K  = 0x04 | 0x50 | 0x00 // BPF_ALU | BPF_AND | BPF_K
	opRsh32K  = 0x04 | 0x70 | 0x00 // BPF_ALU | BPF_RSH | BPF_K
	opMov64K  = 0x07 | 0xb0 | 0x00 // BPF_ALU64 | BPF_MOV | BPF_K
	opJeqK    = 0x05 | 0x10 | 0x00 // BPF_JMP | BPF_JEQ | BPF_K
	opJneK    = 0x05 | 0x50 | 0x00 // BPF_JMP | BPF_JNE | BPF_K
	opExit    = 0x05 | 0x90        // BPF_JMP | BPF_EXIT
	devBlock  = 1                  // BPF_DEVCG_DEV_BLOCK
	devChar   = 2                  // BPF_DEVCG_DEV_CHAR
	maxInsns  = 4096               // BPF_MAXINSNS, the limit without CAP_BPF
	regR0     = 0
	regCtx    = 1
	regAccTyp = 2
	regType   = 3
	regAccess = 4
	regMajor  = 5
	regMinor  = 1 // reuses the context register once the context is read
)

// bpfInsn is struct bpf_insn: code, dst_reg:4 and src_reg:4 in one byte,
// off, imm.
type bpfInsn struct {
	code uint8
	regs uint8
	off  int16
	imm  int32
}

// bigEndian tells how the C bitfields dst_reg:4, src_reg:4 are laid out:
// dst in the low nibble on little-endian machines, the high one otherwise.
var bigEndian = binary.NativeEndian.Uint16([]byte{0, 1}) == 1

func insn(code uint8, dst, src uint8, off int16, imm int32) bpfInsn {
	regs := dst | src<<4
	if bigEndian {
		regs = dst<<4 | src
	}
	return bpfInsn{code: code, regs: regs, off: off, imm: imm}
}

func (i bpfInsn) dst() uint8 {
	if bigEndian {
		return i.regs >> 4
	}
	return i.regs & 0xf
}

func (i bpfInsn) src() uint8 {
	if bigEndian {
		return i.regs & 0xf
	}
	return i.regs >> 4
}

func ret(v int32) []bpfInsn {
	return []bpfInsn{insn(opMov64K, regR0, 0, 0, v), insn(opExit, 0, 0, 0, 0)}
}

// deviceProgram assembles the program for the rules. See the top of the
// file for its shape.
func deviceProgram(rules []devRule) ([]bpfInsn, error) {
	prog := []bpfInsn{
		insn(opLdxW, regAccTyp, regCtx, 0, 0),
		insn(opMov32X, regType, regAccTyp, 0, 0),
		insn(opAnd32K, regType, 0, 0, 0xffff),
		insn(opMov32X, regAccess, regAccTyp, 0, 0),
		insn(opRsh32K, regAccess, 0, 0, 16),
		insn(opLdxW, regMajor, regCtx, 4, 0),
		insn(opLdxW, regMinor, regCtx, 8, 0),
		insn(opJneK, regAccess, 0, 2, 0),
	}
	prog = append(prog, ret(1)...)
	final := false
	for i := len(rules) - 1; i >= 0 && !final; i-- {
		var block []bpfInsn
		block, final = ruleBlock(rules[i])
		prog = append(prog, block...)
	}
	if !final {
		prog = append(prog, ret(0)...)
	}
	if len(prog) > maxInsns {
		return nil, fmt.Errorf("set devices: %d rules make a device program of %d instructions, over the kernel's limit of %d", len(rules), len(prog), maxInsns)
	}
	return prog, nil
}

// ruleBlock assembles one rule. Every jump in it goes to its end, the
// next block. final reports a block that always returns.
func ruleBlock(r devRule) (block []bpfInsn, final bool) {
	const next = -1 // placeholder offset, patched below
	var checks []bpfInsn
	switch r.typ {
	case 'c':
		checks = append(checks, insn(opJneK, regType, 0, next, devChar))
	case 'b':
		checks = append(checks, insn(opJneK, regType, 0, next, devBlock))
	}
	if r.major != wildcard {
		checks = append(checks, insn(opJneK, regMajor, 0, next, int32(r.major)))
	}
	if r.minor != wildcard {
		checks = append(checks, insn(opJneK, regMinor, 0, next, int32(r.minor)))
	}
	block = checks
	switch {
	case !r.allow && r.acc == accAll:
		// r4 is never 0 here: every bit it still holds is denied.
		block = append(block, ret(0)...)
		final = len(checks) == 0
	case !r.allow:
		block = append(block,
			insn(opMov32X, regR0, regAccess, 0, 0),
			insn(opAnd32K, regR0, 0, 0, int32(r.acc)),
			insn(opJeqK, regR0, 0, next, 0))
		block = append(block, ret(0)...)
	case r.acc == accAll && len(checks) == 0:
		return ret(1), true
	default:
		block = append(block,
			insn(opAnd32K, regAccess, 0, 0, int32(^uint32(r.acc))),
			insn(opJneK, regAccess, 0, next, 0))
		block = append(block, ret(1)...)
	}
	for j := range block {
		if block[j].off == next && (block[j].code == opJneK || block[j].code == opJeqK) {
			block[j].off = int16(len(block) - j - 1)
		}
	}
	return block, final
}
