// Package format prints what the berth CLI shows the way the docker CLI
// shows it: --format Go templates with docker's functions, "table ..."
// formats with upper-case headers aligned by a tabwriter with docker's
// settings, "json" as one object per line, human sizes and ages as
// go-units writes them, truncated IDs and ellipsised text.
//
// A row is a map from field name to value, so a template sees the same
// names docker's do ({{.Repository}}, {{.ID}}) and {{json .}} prints
// docker's keys.
//
// Imported by the berth CLI only.
package format
