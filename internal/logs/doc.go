// Package logs is docker's json-file log driver: the writer the shim feeds
// with a container's output, and the reader behind `logs` (tail, since,
// until, follow).
//
// The file format is docker's, byte for byte, so tools that read docker's
// logs read berth's: one JSON object per line,
//
//	{"log":"hello\n","stream":"stdout","time":"2024-05-01T12:00:00.123456789Z"}
//
// where "log" is the text of one line of output with its newline, "stream"
// is "stdout" or "stderr" and "time" is when the shim read it (UTC,
// RFC 3339 with nanoseconds, trailing zeros dropped). A line longer than
// MaxLine (16 KiB, docker's copier buffer) is cut into pieces; every piece
// but the last is partial and has no newline, and so has the unterminated
// last line of a stream. Readers join nothing: a partial message is handed
// on as partial, as docker does.
//
// Rotation: when the next line would take the file past MaxSize, the file
// becomes PATH.1, PATH.1 becomes PATH.2 and so on up to PATH.<MaxFiles-1>,
// and the oldest is dropped; with MaxFiles 1 the file is replaced by an
// empty one (a new inode, so that followers notice).
// Docker's json-file driver is unbounded by default (max-size -1), which is a
// long-standing complaint: one chatty container fills the disk. berth caps it
// by default at DefaultMaxSize x DefaultMaxFiles, 10 MiB x 3 files, the
// figures docker's own documentation suggests in its daemon.json example:
// at most 30 MiB per container (3 GiB for 100 containers) while keeping
// enough recent history to debug with. MaxSize <= 0 still asks for
// docker's unbounded file.
//
// Invariants:
//   - Each message is written with one write(2) of a whole line, so a reader
//     never sees another writer's bytes inside a line; a reader keeps an
//     unterminated tail back until its newline arrives, since a concurrent
//     read may see a line half written.
//   - A file never grows past MaxSize unless a single line is longer.
//   - Reading tolerates damage: a line that is not valid JSON (a crash or a
//     full disk cut it short) is skipped, not fatal.
//
// Who imports it: the shim (writing) and the engine (reading). It imports
// only the standard library and x/sys.
package logs
