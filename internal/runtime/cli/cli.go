package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/runtime"
	"github.com/berth-project/berth/internal/runtime/initstage"
)

// Version is set at build time.
var Version = "0.1.0-dev"

// Commit is set at build time.
var Commit = ""

// globals are the flags before the command.
type globals struct {
	root          string
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rootless      string
	criu          string
	logger        *logger
}

type command struct {
	name    string
	usage   string
	summary string
	run     func(g *globals, args []string) error
}

var commands []*command

func init() {
	// Filled here rather than in a var block: the command functions refer
	// to the table through usage output.
	commands = []*command{
		{"create", "create [flags] <container-id>", "create a container", cmdCreate},
		{"start", "start <container-id>", "execute the user's program in a created container", cmdStart},
		{"run", "run [flags] <container-id>", "create and start a container", cmdRun},
		{"state", "state <container-id>", "print the state of a container as JSON", cmdState},
		{"list", "list [flags]", "list containers", cmdList},
		{"kill", "kill [--all] <container-id> [signal]", "send a signal to a container's init (default SIGTERM)", cmdKill},
		{"delete", "delete [--force] <container-id>...", "delete containers and what they hold", cmdDelete},
		{"exec", "exec [flags] <container-id> [command [args...]]", "run a new process in a running container", cmdExec},
		{"ps", "ps [--format table|json] <container-id> [ps options]", "list the processes of a container", cmdPs},
		{"pause", "pause <container-id>", "freeze every process of a container", cmdPause},
		{"resume", "resume <container-id>", "thaw a paused container", cmdResume},
		{"update", "update [flags] <container-id>", "change a container's resource limits", cmdUpdate},
		{"events", "events [--stats] [--interval 5s] <container-id>", "print statistics and OOM events as JSON", cmdEvents},
		{"spec", "spec [--bundle dir] [--rootless]", "write a new config.json", cmdSpec},
		{"features", "features", "print the features this runtime supports, as JSON", cmdFeatures},
	}
}

// exitError carries a status for commands that exit with the container's.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// statusError is a failure of the runtime reported with a status of its
// own instead of 1.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// Main runs the command line and returns the exit status.
func Main(args []string) int {
	if len(args) > 1 {
		switch args[1] {
		case initstage.KindInit, initstage.KindExec:
			// The stage's constructor runs these before main and never
			// returns: reaching here means a binary built without it.
			fmt.Fprintf(os.Stderr, "berth-runtime %s: this binary has no container stage (built without cgo?)\n", args[1])
			return 1
		case "stage":
			return runtime.StageMain()
		}
	}
	g := &globals{}
	fs := flag.NewFlagSet("berth-runtime", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.root, "root", "/run/berth-runtime", "directory for container state")
	fs.StringVar(&g.log, "log", "", "log file (default: stderr)")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&g.debug, "debug", false, "debug logging")
	fs.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "use the systemd cgroup driver")
	fs.StringVar(&g.rootless, "rootless", "auto", "rootless mode: true, false or auto")
	fs.StringVar(&g.criu, "criu", "criu", "path to criu (checkpoint/restore is not supported)")
	version := fs.Bool("version", false, "print the version")
	fs.BoolVar(version, "v", false, "print the version")
	help := fs.Bool("help", false, "print help")
	fs.BoolVar(help, "h", false, "print help")
	if err := fs.Parse(args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
		usage(os.Stderr)
		return 2
	}
	if *version {
		printVersion(os.Stdout)
		return 0
	}
	rest := fs.Args()
	if *help || len(rest) == 0 {
		usage(os.Stdout)
		if len(rest) == 0 && !*help {
			return 2
		}
		return 0
	}
	if g.logFormat != "text" && g.logFormat != "json" {
		fmt.Fprintf(os.Stderr, "berth-runtime: unknown --log-format %q (text or json)\n", g.logFormat)
		return 2
	}
	lg, err := newLogger(g.log, g.logFormat, g.debug)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
		return 1
	}
	defer lg.close()
	g.logger = lg

	name := rest[0]
	for _, c := range commands {
		if c.name != name {
			continue
		}
		err := c.run(g, rest[1:])
		if err == nil {
			return 0
		}
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		var ue *usageError
		if errors.As(err, &ue) {
			lg.errorf("%s: %v", name, ue.err)
			fmt.Fprintf(os.Stderr, "usage: berth-runtime %s\n", c.usage)
			return 2
		}
		var se *statusError
		if errors.As(err, &se) {
			lg.errorf("%s: %v", name, se.err)
			return se.code
		}
		var w *runtime.Warning
		if errors.As(err, &w) {
			lg.warnf("%s: %v", name, w.Err)
			return 0
		}
		lg.errorf("%s: %v", name, err)
		return 1
	}
	lg.errorf("unknown command %q (see berth-runtime --help)", name)
	return 2
}

type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: berth-runtime [global flags] <command> [flags] [arguments]")
	fmt.Fprintln(w, "\nberth-runtime runs containers from OCI bundles (runtime-spec", specVersion()+"), with runc's command line.")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nglobal flags: --root DIR, --log FILE, --log-format text|json, --debug, --systemd-cgroup, --rootless true|false|auto, --version")
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "berth-runtime version %s\n", Version)
	if Commit != "" {
		fmt.Fprintf(w, "commit: %s\n", Commit)
	}
	fmt.Fprintf(w, "spec: %s\n", specVersion())
}

// logger writes runc-style log lines: to stderr, and to --log when given.
type logger struct {
	file   *os.File
	json   bool
	debug  bool
	stderr io.Writer
}

func newLogger(path, format string, debug bool) (*logger, error) {
	l := &logger{json: format == "json", debug: debug, stderr: os.Stderr}
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open log file: %w", err)
		}
		l.file = f
	}
	return l, nil
}

func (l *logger) close() {
	if l.file != nil {
		l.file.Close()
	}
}

func (l *logger) write(level, msg string) {
	if l.file != nil {
		if l.json {
			line, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": time.Now().UTC().Format(time.RFC3339Nano)})
			l.file.Write(append(line, '\n'))
		} else {
			fmt.Fprintf(l.file, "time=%q level=%s msg=%q\n", time.Now().UTC().Format(time.RFC3339Nano), level, msg)
		}
	}
}

func (l *logger) errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.write("error", msg)
	fmt.Fprintf(l.stderr, "berth-runtime: %s\n", msg)
}

func (l *logger) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.write("warning", msg)
	fmt.Fprintf(l.stderr, "berth-runtime: warning: %s\n", msg)
}

func (l *logger) debugf(format string, args ...any) {
	if l.debug {
		l.write("debug", fmt.Sprintf(format, args...))
	}
}

// flags builds a command's flag set; the parse error becomes a usage error.
func flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// oneID returns the single container id argument.
func oneID(fs *flag.FlagSet) (string, error) {
	if fs.NArg() != 1 {
		return "", usagef("expected exactly one container id, got %d arguments (%s)", fs.NArg(), strings.Join(fs.Args(), " "))
	}
	return fs.Arg(0), nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
