package cli

import (
	"fmt"

	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

func (c *CLI) pullCommand() *cobra.Command {
	var platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			named, err := reference.ParseNormalizedNamed(args[0])
			if err != nil {
				return err
			}
			if reference.IsNameOnly(named) && !quiet {
				fmt.Fprintln(c.Out, "Using default tag: latest")
			}
			named = reference.TagNameOnly(named)
			opts := client.ImagePullOptions{}
			p, err := parsePlatform(platform)
			if err != nil {
				return err
			}
			if p != nil {
				opts.Platforms = []ocispec.Platform{*p}
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			resp, err := api.ImagePull(cmd.Context(), named.String(), opts)
			if err != nil {
				return err
			}
			defer resp.Close()
			if err := c.display(resp.JSONMessages(cmd.Context()), quiet); err != nil {
				return err
			}
			fmt.Fprintln(c.Out, named.String())
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}

func (c *CLI) pushCommand() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			named, err := reference.ParseNormalizedNamed(args[0])
			if err != nil {
				return err
			}
			if reference.IsNameOnly(named) && !quiet {
				fmt.Fprintln(c.Out, "Using default tag: latest")
			}
			named = reference.TagNameOnly(named)
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			resp, err := api.ImagePush(cmd.Context(), named.String(), client.ImagePushOptions{})
			if err != nil {
				return err
			}
			defer resp.Close()
			if err := c.display(resp.JSONMessages(cmd.Context()), quiet); err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(c.Out, named.String())
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}
