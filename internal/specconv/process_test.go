package specconv

import (
	"math"
	"slices"
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name             string
		imgEntry, imgCmd []string
		entry            []string
		entrySet         bool
		cmd              []string
		want             []string
		err              string
	}{
		{name: "image cmd", imgCmd: []string{"sh"}, want: []string{"sh"}},
		{name: "image entrypoint and cmd", imgEntry: []string{"/init", "-v"}, imgCmd: []string{"serve"}, want: []string{"/init", "-v", "serve"}},
		{name: "user cmd replaces image cmd", imgEntry: []string{"/init"}, imgCmd: []string{"serve"}, cmd: []string{"debug", "x"}, want: []string{"/init", "debug", "x"}},
		{name: "entrypoint drops image cmd", imgEntry: []string{"/init"}, imgCmd: []string{"serve"}, entry: []string{"/bin/ls"}, entrySet: true, want: []string{"/bin/ls"}},
		{name: "entrypoint with user cmd", imgCmd: []string{"serve"}, entry: []string{"/bin/ls"}, entrySet: true, cmd: []string{"-l"}, want: []string{"/bin/ls", "-l"}},
		{name: "empty entrypoint clears image's", imgEntry: []string{"/init"}, imgCmd: []string{"serve"}, entrySet: true, cmd: []string{"sh"}, want: []string{"sh"}},
		{name: "cli empty entrypoint", imgEntry: []string{"/init"}, entry: []string{""}, entrySet: true, cmd: []string{"sh", "-c", "true"}, want: []string{"sh", "-c", "true"}},
		{name: "empty entrypoint and nothing else", imgEntry: []string{"/init"}, imgCmd: []string{"serve"}, entrySet: true, err: "no command specified"},
		{name: "image with nothing", err: "no command specified"},
		{name: "unset entrypoint keeps image's", imgEntry: []string{"/init"}, entry: []string{"/ignored"}, cmd: []string{"a"}, want: []string{"/init", "a"}},
		{name: "empty program", cmd: []string{"", "x"}, err: "empty string"},
		{name: "NUL byte", cmd: []string{"sh", "a\x00b"}, err: "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := &ocispec.ImageConfig{Entrypoint: tc.imgEntry, Cmd: tc.imgCmd}
			got, err := args(img, &Options{Entrypoint: tc.entry, EntrypointSet: tc.entrySet, Cmd: tc.cmd})
			if tc.err != "" {
				wantErr(t, err, tc.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("args %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		imgEnv   []string
		userEnv  []string
		tty      bool
		home     string
		want     []string
		errMatch string
	}{
		{name: "defaults", home: "/root",
			want: []string{DefaultPathEnv, "HOSTNAME=h", "HOME=/root"}},
		{name: "image PATH replaces the default in place", imgEnv: []string{"PATH=/x", "A=1"}, home: "/",
			want: []string{"PATH=/x", "HOSTNAME=h", "A=1", "HOME=/"}},
		{name: "user wins by key, later wins", imgEnv: []string{"A=1", "B=2"}, userEnv: []string{"B=3", "C=4", "C=5"}, home: "/",
			want: []string{DefaultPathEnv, "HOSTNAME=h", "A=1", "B=3", "C=5", "HOME=/"}},
		{name: "tty adds TERM, user overrides", tty: true, userEnv: []string{"TERM=dumb"}, home: "/",
			want: []string{DefaultPathEnv, "HOSTNAME=h", "TERM=dumb", "HOME=/"}},
		{name: "tty", tty: true, home: "/",
			want: []string{DefaultPathEnv, "HOSTNAME=h", "TERM=xterm", "HOME=/"}},
		{name: "HOME from the image is kept", imgEnv: []string{"HOME=/data"}, home: "/root",
			want: []string{DefaultPathEnv, "HOSTNAME=h", "HOME=/data"}},
		{name: "bare key removes", imgEnv: []string{"A=1", "B=2"}, userEnv: []string{"A", "Z"}, home: "/",
			want: []string{DefaultPathEnv, "HOSTNAME=h", "B=2", "HOME=/"}},
		{name: "empty value kept", userEnv: []string{"E="}, home: "/",
			want: []string{DefaultPathEnv, "HOSTNAME=h", "E=", "HOME=/"}},
		{name: "no name", userEnv: []string{"=x"}, errMatch: "has no name"},
		{name: "NUL", imgEnv: []string{"A=x\x00B=y"}, errMatch: "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := environment(&ocispec.ImageConfig{Env: tc.imgEnv}, &Options{Env: tc.userEnv, Tty: tc.tty}, "h", tc.home)
			if tc.errMatch != "" {
				wantErr(t, err, tc.errMatch)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("env\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestWorkingDir(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ img, user, want, err string }{
		{want: "/"},
		{img: "/app", want: "/app"},
		{img: "/app", user: "/srv/x/../y/", want: "/srv/y"},
		{img: "app", err: "needs to be an absolute path"},
		{user: "rel/dir", err: "needs to be an absolute path"},
	} {
		got, err := workingDir(&ocispec.ImageConfig{WorkingDir: tc.img}, &Options{WorkingDir: tc.user})
		if tc.err != "" {
			wantErr(t, err, tc.err)
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("workingDir(%q, %q) = %q, %v; want %q", tc.img, tc.user, got, err, tc.want)
		}
	}
}

func TestRlimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		ul        []Ulimit
		canRaise  bool
		wantType  string
		soft, hrd uint64
		err       []string
	}{
		{name: "nofile under the ceiling", ul: []Ulimit{{Name: "nofile", Soft: 1024, Hard: 20000}}, wantType: "RLIMIT_NOFILE", soft: 1024, hrd: 20000},
		{name: "above the host's hard limit", ul: []Ulimit{{Name: "nofile", Soft: 1024, Hard: 65536}},
			err: []string{"--ulimit nofile", "65536", "RLIMIT_NOFILE", "20000", "CAP_SYS_RESOURCE"}},
		{name: "unlimited above the ceiling", ul: []Ulimit{{Name: "nofile", Soft: -1, Hard: -1}}, err: []string{"unlimited", "20000"}},
		{name: "raising allowed with CAP_SYS_RESOURCE", ul: []Ulimit{{Name: "nofile", Soft: 1024, Hard: 65536}}, canRaise: true,
			wantType: "RLIMIT_NOFILE", soft: 1024, hrd: 65536},
		{name: "unlimited where the host is", ul: []Ulimit{{Name: "memlock", Soft: -1, Hard: -1}}, wantType: "RLIMIT_MEMLOCK", soft: math.MaxUint64, hrd: math.MaxUint64},
		{name: "soft above hard", ul: []Ulimit{{Name: "nproc", Soft: 10, Hard: 5}}, err: []string{"soft limit 10 is above the hard limit 5"}},
		{name: "unknown", ul: []Ulimit{{Name: "files", Soft: 1, Hard: 1}}, err: []string{`unknown limit "files"`}},
		{name: "twice", ul: []Ulimit{{Name: "core", Soft: 0, Hard: 0}, {Name: "CORE", Soft: 0, Hard: 0}}, err: []string{"given twice"}},
		{name: "negative", ul: []Ulimit{{Name: "core", Soft: -2, Hard: 0}}, err: []string{"negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testHost()
			h.CanRaiseRlimits = tc.canRaise
			got, err := rlimits(tc.ul, h)
			if tc.err != nil {
				wantErr(t, err, tc.err...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Type != tc.wantType || got[0].Soft != tc.soft || got[0].Hard != tc.hrd {
				t.Errorf("rlimits %+v, want %s %d/%d", got, tc.wantType, tc.soft, tc.hrd)
			}
		})
	}
}

// TestSpecProcess checks the process section end to end: the image's
// user and working dir, the user's overrides, hostname and env.
func TestSpecProcess(t *testing.T) {
	t.Parallel()
	img := testImage()
	img.Config.User = "berth"
	img.Config.WorkingDir = "/work"
	img.Config.Entrypoint = []string{"/entry"}
	o := &Options{ContainerID: testID, Rootfs: testRootfs(t), Env: []string{"X=1"}, Tty: true, ConsoleSize: &[2]uint{24, 80}}
	s, _, err := Spec(img, o, testHost())
	if err != nil {
		t.Fatal(err)
	}
	p := s.Process
	if p.User.UID != 1000 || p.User.GID != 1000 || !slices.Equal(p.User.AdditionalGids, []uint32{1000, 50, 29}) {
		t.Errorf("user %+v, want berth", p.User)
	}
	if p.Cwd != "/work" || !slices.Equal(p.Args, []string{"/entry", "/bin/sh"}) || !p.Terminal {
		t.Errorf("cwd %q args %q terminal %v", p.Cwd, p.Args, p.Terminal)
	}
	if p.ConsoleSize == nil || p.ConsoleSize.Height != 24 || p.ConsoleSize.Width != 80 {
		t.Errorf("console size %+v", p.ConsoleSize)
	}
	want := []string{"PATH=/image/bin:/bin", "HOSTNAME=" + testID[:12], "TERM=xterm", "X=1", "HOME=/home/berth"}
	if !slices.Equal(p.Env, want) {
		t.Errorf("env %q, want %q", p.Env, want)
	}
	if s.Hostname != testID[:12] {
		t.Errorf("hostname %q", s.Hostname)
	}
	if p.OOMScoreAdj == nil || *p.OOMScoreAdj != 0 || p.NoNewPrivileges || len(p.Rlimits) != 0 {
		t.Errorf("oom %v nnp %v rlimits %v; want 0, false (docker's default), none", p.OOMScoreAdj, p.NoNewPrivileges, p.Rlimits)
	}

	// The user's --user and -w win over the image's.
	o.User, o.WorkingDir = "4242:4343", "/elsewhere"
	s, _, err = Spec(img, o, testHost())
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.User.UID != 4242 || s.Process.User.GID != 4343 || s.Process.Cwd != "/elsewhere" {
		t.Errorf("user %+v cwd %q", s.Process.User, s.Process.Cwd)
	}
	if v, _ := envValue(s.Process.Env, "HOME"); v != "/" {
		t.Errorf("HOME %q for a user without entry, want /", v)
	}

	// A windows image and a bad user are refused before anything else.
	win := testImage()
	win.OS = "windows"
	_, _, err = Spec(win, &Options{ContainerID: testID, Rootfs: o.Rootfs}, testHost())
	wantErr(t, err, `operating system "windows"`)
	_, _, err = Spec(&dockerspec.DockerOCIImage{}, &Options{ContainerID: testID, Rootfs: o.Rootfs}, testHost())
	wantErr(t, err, "no command specified")
}

func TestOOMScoreAndHostname(t *testing.T) {
	t.Parallel()
	s := mustSpec(t, nil, func(o *Options) { o.OomScoreAdj = -500; o.Hostname = "web"; o.Domainname = "example.org" })
	if *s.Process.OOMScoreAdj != -500 || s.Hostname != "web" || s.Domainname != "example.org" {
		t.Errorf("oom %d hostname %q domain %q", *s.Process.OOMScoreAdj, s.Hostname, s.Domainname)
	}
	if v, _ := envValue(s.Process.Env, "HOSTNAME"); v != "web" {
		t.Errorf("HOSTNAME=%q", v)
	}
	_, _, err := trySpec(t, nil, func(o *Options) { o.OomScoreAdj = 1001 })
	wantErr(t, err, "range for oom score adj is [-1000, 1000]")
	_, _, err = trySpec(t, nil, func(o *Options) { o.Hostname = strings.Repeat("h", 65) })
	wantErr(t, err, "--hostname", "64")
	_, _, err = trySpec(t, nil, func(o *Options) { o.Hostname = "a\nb" })
	wantErr(t, err, "control character")
	_, _, err = trySpec(t, nil, func(o *Options) { o.UTS.Mode = NamespaceHost; o.Hostname = "x" })
	wantErr(t, err, "conflicting options: hostname and the UTS mode")
	_, _, err = trySpec(t, nil, func(o *Options) { o.ContainerID = "../x" })
	wantErr(t, err, "container ID")
	_, _, err = trySpec(t, nil, func(o *Options) { o.Rootfs = "rootfs" })
	wantErr(t, err, "not an absolute path")
}

func TestStopSignal(t *testing.T) {
	t.Parallel()
	img := testImage()
	for _, tc := range []struct {
		img, opt string
		want     int
		err      bool
	}{
		{want: 15},
		{img: "SIGQUIT", want: 3},
		{img: "SIGQUIT", opt: "KILL", want: 9},
		{opt: "sigusr1", want: 10},
		{opt: "2", want: 2},
		{opt: "SIGRTMIN+3", want: 37},
		{opt: "RTMAX", want: 64},
		{opt: "SIGNOPE", err: true},
		{opt: "65", err: true},
		{opt: "SIGRTMIN+40", err: true},
	} {
		img.Config.StopSignal = tc.img
		got, err := StopSignal(img, tc.opt)
		if tc.err {
			wantErr(t, err, "invalid stop signal")
			continue
		}
		if err != nil || int(got) != tc.want {
			t.Errorf("StopSignal(%q, %q) = %d, %v; want %d", tc.img, tc.opt, got, err, tc.want)
		}
	}
}
