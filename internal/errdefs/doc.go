// Package errdefs holds the classes of error berthd's packages share, so
// that the API server maps every package's errors to docker's status codes
// with one mapping. An error keeps its own message and gains a class:
// errors.Is(err, errdefs.ErrNotFound) finds it through any wrapping.
package errdefs
