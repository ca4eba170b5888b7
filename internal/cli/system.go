package cli

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"text/template"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-project/berth/internal/cli/format"
)

const versionTemplate = `Client:
 Version:	{{.Client.Version}}
 API version:	{{.Client.APIVersion}}{{if ne .Client.APIVersion .Client.DefaultAPIVersion}} (downgraded from {{.Client.DefaultAPIVersion}}){{end}}
 Go version:	{{.Client.GoVersion}}
 Git commit:	{{.Client.GitCommit}}
 Built:	{{.Client.BuildTime}}
 OS/Arch:	{{.Client.Os}}/{{.Client.Arch}}
{{- if .Server}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
{{- range $c := .Components}}
 {{$c.Name}}:
  Version:	{{$c.Version}}
{{- if eq $c.Name "Engine"}}
  API version:	{{index $c.Details "ApiVersion"}} (minimum version {{index $c.Details "MinAPIVersion"}})
  Go version:	{{index $c.Details "GoVersion"}}
  Git commit:	{{index $c.Details "GitCommit"}}
  Built:	{{index $c.Details "BuildTime"}}
  OS/Arch:	{{index $c.Details "Os"}}/{{index $c.Details "Arch"}}
  Experimental:	{{index $c.Details "Experimental"}}
{{- end}}
{{- end}}
{{- end}}{{end}}
`

type clientVersion struct {
	Version, APIVersion, DefaultAPIVersion, GoVersion, GitCommit, BuildTime, Os, Arch string
}

type versionInfo struct {
	Client clientVersion
	Server *client.ServerVersionResult
}

func (c *CLI) versionCommand() *cobra.Command {
	var tmpl string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			text := tmpl
			switch tmpl {
			case "":
				text = versionTemplate
			case "json":
				text = "{{json .}}"
			}
			t, err := template.New("version").Funcs(format.Funcs).Parse(text)
			if err != nil {
				return fmt.Errorf("template parsing error: %w", err)
			}
			v := versionInfo{Client: clientVersion{
				Version: Version, DefaultAPIVersion: client.MaxAPIVersion, APIVersion: client.MaxAPIVersion,
				GoVersion: runtime.Version(), GitCommit: GitCommit, BuildTime: BuildTime,
				Os: runtime.GOOS, Arch: runtime.GOARCH,
			}}
			var serverErr error
			api, err := c.Client(cmd.Context())
			if err == nil {
				sv, err := api.ServerVersion(cmd.Context(), client.ServerVersionOptions{})
				if err == nil {
					v.Server = &sv
				}
				serverErr = err
				v.Client.APIVersion = api.ClientVersion()
			} else {
				serverErr = err
			}
			var b bytes.Buffer
			if err := t.Execute(&b, v); err != nil {
				return fmt.Errorf("template: %w", err)
			}
			if tmpl == "" {
				tw := tabwriter.NewWriter(c.Out, 20, 1, 1, ' ', 0)
				tw.Write(b.Bytes())
				tw.Flush()
			} else {
				b.WriteByte('\n')
				c.Out.Write(b.Bytes())
			}
			return serverErr
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", "Format output using a custom template")
	return cmd
}

func (c *CLI) infoCommand() *cobra.Command {
	var tmpl string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.Info(cmd.Context(), client.InfoOptions{})
			if err != nil {
				return err
			}
			if tmpl != "" {
				if tmpl == "json" {
					tmpl = "{{json .}}"
				}
				t, err := template.New("info").Funcs(format.Funcs).Parse(tmpl)
				if err != nil {
					return fmt.Errorf("template parsing error: %w", err)
				}
				return format.Execute(c.Out, t, res.Info)
			}
			printInfo(c.Out, res.Info)
			return nil
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", "Format output using a custom template")
	return cmd
}

// printInfo writes the server part of docker info's layout.
func printInfo(w io.Writer, i system.Info) {
	p := func(indent int, k string, v any) { fmt.Fprintf(w, "%s%s: %v\n", strings.Repeat(" ", indent), k, v) }
	fmt.Fprintln(w, "Server:")
	p(1, "Containers", i.Containers)
	p(2, "Running", i.ContainersRunning)
	p(2, "Paused", i.ContainersPaused)
	p(2, "Stopped", i.ContainersStopped)
	p(1, "Images", i.Images)
	p(1, "Server Version", i.ServerVersion)
	p(1, "Storage Driver", i.Driver)
	for _, kv := range i.DriverStatus {
		p(2, kv[0], kv[1])
	}
	p(1, "Logging Driver", i.LoggingDriver)
	p(1, "Cgroup Driver", i.CgroupDriver)
	p(1, "Cgroup Version", i.CgroupVersion)
	fmt.Fprintln(w, " Plugins:")
	p(2, "Volume", strings.Join(i.Plugins.Volume, " "))
	p(2, "Network", strings.Join(i.Plugins.Network, " "))
	p(2, "Log", strings.Join(i.Plugins.Log, " "))
	p(1, "Swarm", i.Swarm.LocalNodeState)
	if len(i.SecurityOptions) > 0 {
		fmt.Fprintln(w, " Security Options:")
		for _, o := range i.SecurityOptions {
			for _, kv := range strings.Split(o, ",") {
				k, v, _ := strings.Cut(kv, "=")
				if k == "name" {
					fmt.Fprintf(w, "  %s\n", v)
				} else {
					fmt.Fprintf(w, "   %s: %s\n", strings.ToUpper(k[:1])+k[1:], v)
				}
			}
		}
	}
	p(1, "Kernel Version", i.KernelVersion)
	p(1, "Operating System", i.OperatingSystem)
	p(1, "OSType", i.OSType)
	p(1, "Architecture", i.Architecture)
	p(1, "CPUs", i.NCPU)
	p(1, "Total Memory", units.BytesSize(float64(i.MemTotal)))
	p(1, "Name", i.Name)
	p(1, "ID", i.ID)
	p(1, "Berth Root Dir", i.DockerRootDir)
	p(1, "Debug Mode", i.Debug)
	p(1, "Experimental", i.ExperimentalBuild)
	if i.RegistryConfig != nil {
		var insecure []string
		for _, p := range i.RegistryConfig.InsecureRegistryCIDRs {
			insecure = append(insecure, p.String())
		}
		for name, idx := range i.RegistryConfig.IndexConfigs {
			if !idx.Secure {
				insecure = append(insecure, name)
			}
		}
		if len(insecure) > 0 {
			fmt.Fprintln(w, " Insecure Registries:")
			for _, r := range insecure {
				fmt.Fprintf(w, "  %s\n", r)
			}
		}
		if len(i.RegistryConfig.Mirrors) > 0 {
			fmt.Fprintln(w, " Registry Mirrors:")
			for _, m := range i.RegistryConfig.Mirrors {
				fmt.Fprintf(w, "  %s\n", m)
			}
		}
	}
	p(1, "Live Restore Enabled", i.LiveRestoreEnabled)
	if len(i.Warnings) > 0 {
		fmt.Fprintln(w)
		for _, warn := range i.Warnings {
			fmt.Fprintln(w, warn)
		}
	}
}
