package specconv

import (
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/runtime/specgen"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCapabilities(t *testing.T) {
	t.Parallel()
	def := specgen.DefaultCapabilities
	without := func(drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(def), func(c string) bool { return slices.Contains(drop, c) })
	}
	h := testHost()
	for _, tc := range []struct {
		name       string
		add, drop  []string
		privileged bool
		want       []string
		err        string
	}{
		{name: "defaults", want: def},
		{name: "drop", drop: []string{"NET_RAW", "cap_mknod"}, want: without("CAP_NET_RAW", "CAP_MKNOD")},
		{name: "add in docker's forms", add: []string{"net_admin", "CAP_SYS_PTRACE", "Sys_Admin"},
			want: append(slices.Clone(def), "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_ADMIN")},
		{name: "add a default again", add: []string{"CHOWN"}, want: def},
		{name: "drop ALL add some", drop: []string{"all"}, add: []string{"CHOWN", "KILL"}, want: []string{"CAP_CHOWN", "CAP_KILL"}},
		{name: "drop ALL", drop: []string{"ALL"}, want: nil},
		{name: "add ALL drop some", add: []string{"ALL"}, drop: []string{"MKNOD", "SYS_ADMIN"},
			want: slices.DeleteFunc(slices.Clone(h.Capabilities), func(c string) bool { return c == "CAP_MKNOD" || c == "CAP_SYS_ADMIN" })},
		{name: "privileged", privileged: true, drop: []string{"ALL"}, want: h.Capabilities},
		{name: "unknown", add: []string{"NET_WIZARD"}, err: `unknown capability: "CAP_NET_WIZARD"`},
		{name: "unknown drop", drop: []string{"FOO"}, err: `unknown capability: "CAP_FOO"`},
		{name: "not held by the engine", add: []string{"SYS_RESOURCE"}, err: `not available in the current environment: "CAP_SYS_RESOURCE"`},
		{name: "drop one not held", drop: []string{"SYS_RESOURCE"}, want: def},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, err := trySpec(t, h, func(o *Options) { o.CapAdd, o.CapDrop, o.Privileged = tc.add, tc.drop, tc.privileged })
			if tc.err != "" {
				wantErr(t, err, tc.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := s.Process.Capabilities
			for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
				if !slices.Equal(set, tc.want) {
					t.Errorf("%s %v, want %v", name, set, tc.want)
				}
			}
			if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
				t.Errorf("inheritable %v ambient %v, want none (CVE-2022-24769)", c.Inheritable, c.Ambient)
			}
		})
	}
}

// syscallNames lists every syscall the profile names with an action.
func syscallNames(p *specs.LinuxSeccomp) map[string]bool {
	out := map[string]bool{}
	for _, s := range p.Syscalls {
		for _, n := range s.Names {
			out[n] = true
		}
	}
	return out
}

func TestSeccomp(t *testing.T) {
	t.Parallel()
	s := mustSpec(t, nil, nil)
	p := s.Linux.Seccomp
	if p == nil {
		t.Fatal("no seccomp profile by default, want Docker's")
	}
	if p.DefaultAction != specs.ActErrno || len(p.Architectures) == 0 {
		t.Errorf("default action %q architectures %v, want Docker's profile (SCMP_ACT_ERRNO)", p.DefaultAction, p.Architectures)
	}
	names := syscallNames(p)
	for _, n := range []string{"read", "write", "execve", "clone", "socket"} {
		if !names[n] {
			t.Errorf("default profile does not allow %s", n)
		}
	}
	// Docker's profile allows mount, bpf and the like only with the
	// capability that guards them; keyctl never.
	for _, n := range []string{"mount", "umount2", "keyctl", "add_key", "bpf"} {
		if names[n] {
			t.Errorf("default profile allows %s without its capability", n)
		}
	}
	admin := mustSpec(t, nil, func(o *Options) { o.CapAdd = []string{"SYS_ADMIN"} })
	if n := syscallNames(admin.Linux.Seccomp); !n["mount"] || !n["umount2"] || n["keyctl"] {
		t.Errorf("profile with CAP_SYS_ADMIN: mount %v umount2 %v keyctl %v; want true true false", n["mount"], n["umount2"], n["keyctl"])
	}

	for name, edit := range map[string]func(o *Options){
		"unconfined": func(o *Options) { o.SecurityOpt = []string{"seccomp=unconfined"} },
		"privileged": func(o *Options) { o.Privileged = true },
		"privileged, custom profile": func(o *Options) {
			o.Privileged = true
			o.SecurityOpt = []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`}
		},
		"old separator": func(o *Options) { o.SecurityOpt = []string{"seccomp:unconfined"} },
	} {
		if s := mustSpec(t, nil, edit); s.Linux.Seccomp != nil {
			t.Errorf("%s: seccomp %v, want none", name, s.Linux.Seccomp.DefaultAction)
		}
	}
	if s := mustSpec(t, nil, func(o *Options) { o.SecurityOpt = []string{"seccomp=builtin"} }); s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Errorf("seccomp=builtin: %v, want Docker's profile", s.Linux.Seccomp)
	}

	custom := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod","fchmodat"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
		{"names":["bpf"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_BPF"]}}]}`
	s = mustSpec(t, nil, func(o *Options) { o.SecurityOpt = []string{"seccomp=" + custom} })
	if p := s.Linux.Seccomp; p == nil || p.DefaultAction != specs.ActAllow || len(p.Syscalls) != 1 || p.Syscalls[0].Names[0] != "chmod" {
		t.Errorf("custom profile rendered as %+v, want allow-all with chmod denied and bpf dropped (no CAP_BPF)", p)
	}
	_, _, err := trySpec(t, nil, func(o *Options) { o.SecurityOpt = []string{"seccomp={not json"} })
	wantErr(t, err, "--security-opt seccomp")
	_, _, err = trySpec(t, nil, func(o *Options) { o.SecurityOpt = []string{"seccomp={}"} })
	wantErr(t, err, "seccomp=unconfined")
}

func TestSecurityOpts(t *testing.T) {
	t.Parallel()
	nnp := func(h *Host, opts ...string) bool {
		return mustSpec(t, h, func(o *Options) { o.SecurityOpt = opts }).Process.NoNewPrivileges
	}
	if nnp(nil) || !nnp(nil, "no-new-privileges") || !nnp(nil, "no-new-privileges=true") || !nnp(nil, "no-new-privileges:true") || nnp(nil, "no-new-privileges=false") {
		t.Error("no-new-privileges forms: want off by default, on with the bare option, =true and :true, off with =false")
	}
	h := testHost()
	h.NoNewPrivileges = true
	if !nnp(h) || nnp(h, "no-new-privileges=false") {
		t.Error("engine default no-new-privileges: want on, and off with =false")
	}

	for _, tc := range []struct {
		opt  string
		err  []string
		host func(h *Host)
	}{
		{opt: "apparmor=docker-default", err: []string{"apparmor=docker-default", "AppArmor is not enabled"}},
		{opt: "label=type:container_t", err: []string{"SELinux is not enabled"}},
		{opt: "label=level:s0:c1,c2", host: func(h *Host) { h.SELinux = true }},
		{opt: "label=colour:blue", host: func(h *Host) { h.SELinux = true }, err: []string{`unknown label field "colour"`}},
		{opt: "apparmor=unconfined"},
		{opt: "label=disable"},
		{opt: "no-new-privileges=maybe", err: []string{"want true or false"}},
		{opt: "systempaths=confined", err: []string{"unconfined"}},
		{opt: "bogus=1", err: []string{`unknown option "bogus"`}},
		{opt: "bogus", err: []string{"want KEY=VALUE"}},
		{opt: "mask=relative", err: []string{"not a clean absolute path"}},
		{opt: "seccomp=", err: []string{"empty profile"}},
	} {
		h := testHost()
		if tc.host != nil {
			tc.host(h)
		}
		_, _, err := trySpec(t, h, func(o *Options) { o.SecurityOpt = []string{tc.opt} })
		if tc.err == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.opt, err)
			}
			continue
		}
		wantErr(t, err, tc.err...)
	}

	// SELinux labels over docker's container defaults.
	h = testHost()
	h.SELinux = true
	s := mustSpec(t, h, func(o *Options) { o.SecurityOpt = []string{"label=type:spc_t", "label=level:s0:c1,c2"} })
	if s.Process.SelinuxLabel != "system_u:system_r:spc_t:s0:c1,c2" || s.Linux.MountLabel != "system_u:object_r:container_file_t:s0:c1,c2" {
		t.Errorf("labels %q %q", s.Process.SelinuxLabel, s.Linux.MountLabel)
	}

	// AppArmor: the engine's profile, the user's, unconfined when privileged.
	h = testHost()
	h.AppArmor, h.AppArmorProfile = true, "berth-default"
	for _, tc := range []struct {
		opts       []string
		privileged bool
		want       string
	}{{nil, false, "berth-default"}, {[]string{"apparmor=mine"}, false, "mine"}, {nil, true, "unconfined"}, {[]string{"apparmor=mine"}, true, "mine"}} {
		s := mustSpec(t, h, func(o *Options) { o.SecurityOpt, o.Privileged = tc.opts, tc.privileged })
		if s.Process.ApparmorProfile != tc.want {
			t.Errorf("apparmor %v privileged %v: %q, want %q", tc.opts, tc.privileged, s.Process.ApparmorProfile, tc.want)
		}
	}
	if s := mustSpec(t, nil, nil); s.Process.ApparmorProfile != "" {
		t.Errorf("apparmor profile %q on a host without AppArmor", s.Process.ApparmorProfile)
	}
}

func TestSystemPaths(t *testing.T) {
	t.Parallel()
	h := testHost()
	defMasked := append(slices.Clone(specgen.MaskedPaths), h.ThermalThrottle...)
	defRO := specgen.ReadonlyPaths
	for _, tc := range []struct {
		name         string
		edit         func(o *Options)
		masked, ro   []string
		sysRW, cgrRW bool
	}{
		{name: "defaults", masked: defMasked, ro: defRO},
		{name: "privileged", edit: func(o *Options) { o.Privileged = true }, sysRW: true, cgrRW: true},
		{name: "systempaths=unconfined", edit: func(o *Options) { o.SecurityOpt = []string{"systempaths=unconfined"} }},
		{name: "api lists", edit: func(o *Options) { o.MaskedPaths, o.ReadonlyPaths = []string{"/proc/x"}, []string{} },
			masked: []string{"/proc/x"}, ro: nil},
		{name: "mask and unmask", edit: func(o *Options) {
			o.SecurityOpt = []string{"mask=/proc/extra:/sys/extra", "unmask=/proc/kcore:/proc/sys"}
		}, masked: append(slices.DeleteFunc(slices.Clone(defMasked), func(p string) bool { return p == "/proc/kcore" }), "/proc/extra", "/sys/extra"),
			ro: slices.DeleteFunc(slices.Clone(defRO), func(p string) bool { return p == "/proc/sys" })},
		{name: "unmask ALL", edit: func(o *Options) { o.SecurityOpt = []string{"unmask=ALL"} }},
		{name: "writable cgroups", edit: func(o *Options) { o.SecurityOpt = []string{"writable-cgroups=true"} }, masked: defMasked, ro: defRO, cgrRW: true},
		{name: "privileged, cgroups kept read-only", edit: func(o *Options) {
			o.Privileged = true
			o.SecurityOpt = []string{"writable-cgroups=false"}
		}, sysRW: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustSpec(t, h, tc.edit)
			if !slices.Equal(s.Linux.MaskedPaths, tc.masked) || !slices.Equal(s.Linux.ReadonlyPaths, tc.ro) {
				t.Errorf("masked %q\nreadonly %q\nwant %q\n%q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, tc.masked, tc.ro)
			}
			sys, _ := findMount(s, "/sys")
			cg, _ := findMount(s, "/sys/fs/cgroup")
			if slices.Contains(sys.Options, "ro") == tc.sysRW || slices.Contains(cg.Options, "ro") == tc.cgrRW {
				t.Errorf("/sys %v cgroup %v, want rw %v %v", sys.Options, cg.Options, tc.sysRW, tc.cgrRW)
			}
		})
	}
}

func TestPrivileged(t *testing.T) {
	t.Parallel()
	s := mustSpec(t, nil, func(o *Options) {
		o.Privileged = true
		o.Devices = []Device{{PathOnHost: "/dev/null", PathInContainer: "/dev/othernull"}}
	})
	if r := s.Linux.Resources.Devices; len(r) != 1 || !r[0].Allow || r[0].Access != "rwm" || r[0].Type != "" {
		t.Errorf("device rules %+v, want one allowing everything", r)
	}
	var paths []string
	for _, d := range s.Linux.Devices {
		paths = append(paths, d.Path)
		if strings.HasPrefix(d.Path, "/dev/pts/") || d.Path == "/dev/console" {
			t.Errorf("privileged device list has %s, which the runtime provides", d.Path)
		}
	}
	for _, want := range []string{"/dev/null", "/dev/zero", "/dev/othernull"} {
		if !slices.Contains(paths, want) {
			t.Errorf("privileged devices %v lack %s", paths, want)
		}
	}
}
