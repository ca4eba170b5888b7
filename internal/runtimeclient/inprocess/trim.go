package inprocess

// #include <malloc.h>
import "C"

// trimCHeap gives back to the kernel what C code freed: libseccomp, when
// a create compiles a profile rather than finds it in the cache, leaves
// glibc arenas of a megabyte or more behind in a shim that lives as long
// as its container.
func trimCHeap() { C.malloc_trim(0) }
