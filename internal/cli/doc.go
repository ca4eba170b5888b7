// Package cli is the berth command line: docker's verbs and flags for
// containers, volumes, images and the system, spoken to berthd over the Docker Engine API with
// the moby client (API version negotiated).
//
// Output follows the docker CLI's: tables, templates and sizes come from
// package format, pull/push/load progress from package progress, errors
// go to stderr as docker prints them ("Error response from daemon: ...")
// with exit status 1, and flag errors with status 125 and a pointer to the
// command's --help.
//
// When the host is the default socket and nothing answers there, berth
// starts berthd (autostart.go) and waits for it.
//
// Imported by cmd/berth only; it may import the API client, the wire
// types and formatting, never the engine's packages.
package cli
