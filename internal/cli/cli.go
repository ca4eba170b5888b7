package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// DefaultHost is berthd's default socket.
const DefaultHost = "unix:///run/berth/berthd.sock"

// Version is the berth CLI's version, set at link time.
var (
	Version   = "dev"
	GitCommit = ""
	BuildTime = ""
)

// CLI is one invocation of berth: its streams, global options and the
// connection to berthd, made on first use.
type CLI struct {
	In       io.Reader
	Out, Err io.Writer

	host      string
	debug     bool
	configDir string

	api *client.Client
}

// StatusError carries the exit status a command ends with.
type StatusError struct {
	Status  int
	Message string
	// help asks the command that returns it to add the line pointing at
	// its --help, which the code that found the error cannot name.
	help bool
}

func (e *StatusError) Error() string { return e.Message }

// Main runs berth with args and returns the exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &CLI{In: stdin, Out: stdout, Err: stderr}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if c.api != nil {
		c.api.Close()
	}
	if err == nil {
		return 0
	}
	var se *StatusError
	if errors.As(err, &se) {
		if se.Message != "" {
			fmt.Fprintln(stderr, se.Message)
		}
		return se.Status
	}
	fmt.Fprintln(stderr, describe(err, c.host))
	return 1
}

// describe words an error as the docker CLI would, with berthd in place
// of "the Docker daemon".
func describe(err error, host string) string {
	if client.IsErrConnectionFailed(err) {
		return fmt.Sprintf("Cannot connect to berthd at %s. Is berthd running?", host)
	}
	return err.Error()
}

func (c *CLI) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "berth [OPTIONS] COMMAND",
		Short:         "A container system with docker's commands",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if c.host == "" {
				c.host = os.Getenv("BERTH_HOST")
			}
			if c.host == "" {
				c.host = DefaultHost
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &StatusError{Status: 1, Message: fmt.Sprintf("berth: '%s' is not a berth command.\nSee 'berth --help'", args[0])}
			}
			return cmd.Help()
		},
		Args: cobra.ArbitraryArgs,
	}
	root.SetVersionTemplate("berth version {{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.CompletionOptions.DisableDefaultCmd = true
	// Global options come before the command, as docker's do (so that
	// "history -H" can mean --human).
	root.TraverseChildren = true
	pf := root.Flags()
	pf.StringVarP(&c.host, "host", "H", "", "Daemon socket to connect to (default $BERTH_HOST, else "+DefaultHost+")")
	pf.BoolVarP(&c.debug, "debug", "D", false, "Enable debug mode")
	pf.StringVar(&c.configDir, "config", "", "Location of client config files (default ~/.docker)")
	root.Flags().BoolP("version", "v", false, "Print version information and quit")

	image := &cobra.Command{Use: "image", Short: "Manage images", Args: noArgs, RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	image.AddCommand(c.pullCommand(), c.pushCommand(), c.listCommand("ls"), c.imageInspectCommand(), c.tagCommand(),
		c.removeCommand("rm"), c.pruneCommand(), c.saveCommand(), c.loadCommand(), c.importCommand(), c.historyCommand())
	system := &cobra.Command{Use: "system", Short: "Manage berthd", Args: noArgs, RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	system.AddCommand(c.dfCommand(), c.infoCommand(), c.eventsCommand())
	ctr := &cobra.Command{Use: "container", Short: "Manage containers", Args: noArgs, RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	ctr.AddCommand(append(c.containerCommands(), c.psCommand("ls"), c.containerInspectCommand(), c.containerPruneCommand())...)
	root.AddCommand(c.containerCommands()...)
	root.AddCommand(c.psCommand("ps"), ctr, c.volumeCommand(), c.networkCommand())
	root.AddCommand(image, system,
		c.pullCommand(), c.pushCommand(), c.listCommand("images"), c.inspectCommand(), c.tagCommand(),
		c.removeCommand("rmi"), c.saveCommand(), c.loadCommand(), c.importCommand(), c.historyCommand(),
		c.versionCommand(), c.infoCommand(), c.eventsCommand())
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		cmd.SetFlagErrorFunc(flagError)
		cmd.DisableFlagsInUseLine = true
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}

// containerCommands are the container verbs, both top-level and under
// "berth container".
func (c *CLI) containerCommands() []*cobra.Command {
	return []*cobra.Command{
		c.runCommand(), c.createCommand(), c.startCommand(), c.stopCommand("stop"), c.stopCommand("restart"),
		c.killCommand(), c.rmCommand(), c.pauseCommand(false), c.pauseCommand(true), c.renameCommand(),
		c.waitCommand(), c.topCommand(), c.portCommand(), c.diffCommand(), c.exportCommand(), c.logsCommand(),
		c.execCommand(), c.attachCommand(), c.cpCommand(), c.statsCommand(), c.commitCommand(), c.updateCommand(),
	}
}

// containerInspectCommand is "berth container inspect".
func (c *CLI) containerInspectCommand() *cobra.Command {
	var tmpl string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.inspectObjects(cmd, args, tmpl, "container", size)
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", "Format output using a custom template")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes")
	return cmd
}

// flagError is docker's answer to a bad flag: the error, a pointer to
// --help, exit status 125.
func flagError(cmd *cobra.Command, err error) error {
	return &StatusError{Status: 125, Message: fmt.Sprintf("%s\nSee '%s --help'.", err, cmd.CommandPath())}
}

// argsError words a wrong argument count as docker does.
func argsError(cmd *cobra.Command, want string) error {
	return &StatusError{Status: 1, Message: fmt.Sprintf("%q requires %s.\nSee '%s --help'.\n\nUsage:  %s\n\n%s",
		cmd.CommandPath(), want, cmd.CommandPath(), cmd.UseLine(), cmd.Short)}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			word := "arguments"
			if n == 1 {
				word = "argument"
			}
			return argsError(cmd, fmt.Sprintf("exactly %d %s", n, word))
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			word := "arguments"
			if n == 1 {
				word = "argument"
			}
			return argsError(cmd, fmt.Sprintf("at least %d %s", n, word))
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return argsError(cmd, fmt.Sprintf("at least %d and at most %d arguments", lo, hi))
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return argsError(cmd, "no arguments")
	}
	return nil
}

// Client returns the API client, starting berthd first when the host is
// the default socket and nothing listens there.
func (c *CLI) Client(ctx context.Context) (*client.Client, error) {
	if c.api != nil {
		return c.api, nil
	}
	if c.host == DefaultHost {
		if err := ensureDaemon(ctx, c.host, c.Err, c.debug); err != nil {
			return nil, err
		}
	}
	api, err := client.New(client.WithHost(c.host), client.WithAPIVersionNegotiation(),
		client.WithUserAgent("berth/"+Version))
	if err != nil {
		return nil, err
	}
	c.api = api
	return api, nil
}

// outIsTerminal reports whether stdout is a terminal, and its width.
func (c *CLI) outIsTerminal() (bool, int) {
	f, ok := c.Out.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false, 0
	}
	w, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return true, 0
	}
	return true, w
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// confirm asks a yes/no question on stdin; anything but y/yes is no.
func (c *CLI) confirm(question string) bool {
	fmt.Fprint(c.Out, question+" [y/N] ")
	var answer string
	fmt.Fscanln(c.In, &answer)
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes"
}
