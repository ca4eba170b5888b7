package initstage

/*
#cgo CFLAGS: -std=gnu11 -Wall -Wextra -O2
extern void berth_stage(int argc, char **argv);

// After the nsenter package's constructor (priority 101), which joins the
// namespaces the process must be in first; glibc passes main's arguments
// to constructors.
__attribute__((constructor(102))) static void berth_stage_init(int argc, char **argv, char **envp)
{
	(void)envp;
	berth_stage(argc, argv);
}
*/
import "C"

// The constructor that joins namespaces (and makes a time namespace) must
// be in every binary the stage runs in, and run first.
import _ "github.com/berth-project/berth/internal/linux/nsenter"

// Kinds are the first arguments that make the runtime binary the stage.
const (
	KindInit = "init"
	KindExec = "exec-child"
)
