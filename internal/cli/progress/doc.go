// Package progress shows the JSON message streams of pull, push, load and
// import as the docker CLI shows them.
//
// On a terminal every layer keeps one line, rewritten in place (ANSI
// cursor-up, erase-line, cursor-down) as its progress bar moves; elsewhere
// each message is a line of its own and byte-count updates are left out,
// so logs hold "Pulling fs layer", "Download complete", "Pull complete".
// An errorDetail message ends the display with that error.
//
// Imported by the berth CLI only.
package progress
