package syncmsg

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/berth-project/berth/internal/linux/rootfs"
	"github.com/berth-project/berth/internal/linux/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Message types.
const (
	TypeConfig    = "config"
	TypeHooks     = "hooks"
	TypeHooksDone = "hooks-done"
	TypeReady     = "ready"
	TypeError     = "error"
)

// maxMessage bounds what either side will allocate for one message; a
// config with a large seccomp profile is a few hundred KiB.
const maxMessage = 16 << 20

// Version is the protocol's version: change it with any change to the
// messages or to Config, so that a parent and a child built apart refuse
// each other rather than drop what one of them does not know.
const Version = "1"

// VersionVar is the environment variable in which the parent names the
// Version it speaks.
const VersionVar = "_BERTH_SYNC_VERSION"

// VersionEnv is the child's environment entry naming the parent's Version.
func VersionEnv() string { return VersionVar + "=" + Version }

// CheckVersion refuses a parent whose VersionEnv names another version
// than this binary's (v is the variable's value, empty when unset).
func CheckVersion(v string) error {
	if v != Version {
		if v == "" {
			v = "none"
		}
		return fmt.Errorf("sync protocol version %s of the caller, this runtime binary speaks %s: use berth-runtime and the program that drives it (berth-shim) from one build", v, Version)
	}
	return nil
}

// Message is the single frame type; fields are set by type.
type Message struct {
	Type string `json:"type"`

	// config
	Config *Config `json:"config,omitempty"`

	// error
	Step    string `json:"step,omitempty"`
	Message string `json:"message,omitempty"`
}

// bare is a Message without a config, as Write encodes it.
type bare struct {
	Type    string `json:"type"`
	Step    string `json:"step,omitempty"`
	Message string `json:"message,omitempty"`
}

// Config is everything the process inside the container needs to know. It
// travels over the socket so that the child never reads the bundle itself.
type Config struct {
	// Exec is true for `exec`, false for a container's init.
	Exec bool `json:"exec,omitempty"`

	ID     string      `json:"id"`
	Bundle string      `json:"bundle"`
	Rootfs string      `json:"rootfs"` // absolute host path; init only
	Spec   *specs.Spec `json:"spec"`
	// Process is what to run; for init it is Spec.Process.
	Process *specs.Process `json:"process"`

	NoPivot      bool `json:"noPivot,omitempty"`
	NoNewKeyring bool `json:"noNewKeyring,omitempty"`
	// PreserveFDs is how many descriptors after stdio the process keeps.
	PreserveFDs int `json:"preserveFds,omitempty"`

	// Namespaces the init created (not joined); it needs to know which ones
	// it owns, e.g. to refuse a hostname without a new uts namespace.
	NewNamespaces []specs.LinuxNamespaceType `json:"newNamespaces,omitempty"`
	// Cgroup is what a "cgroup" mount shows the container.
	Cgroup rootfs.CgroupView `json:"cgroup"`

	// InitPid is the init's pid in the runtime's pid namespace, for the
	// state a seccomp listener receives.
	InitPid int `json:"initPid,omitempty"`
	// Seccomp is the container's filter, compiled by the runtime; a
	// listener connection is passed as a descriptor when it notifies.
	Seccomp *seccomp.Encoded `json:"seccomp,omitempty"`

	// Console is set when the process gets a terminal; the console socket is
	// then passed as a descriptor.
	Console bool `json:"console,omitempty"`
}

// Write sends one message.
func Write(w io.Writer, m *Message) error {
	var v any = m
	if m.Config == nil {
		// encoding/json builds the encoder of every type a type holds
		// before it encodes anything, and the spec's are hundreds: the
		// init, which never sends a config, would pay for them all.
		v = &bare{Type: m.Type, Step: m.Step, Message: m.Message}
	}
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s message: %w", m.Type, err)
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("send %s message: %w", m.Type, err)
	}
	return nil
}

// Read receives one message. It returns io.EOF when the peer closed the
// socket between messages.
func Read(r io.Reader) (*Message, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("read message header: %w", err)
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxMessage {
		return nil, fmt.Errorf("read message: length %d exceeds %d", n, maxMessage)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("read message body: %w", err)
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("decode message: %w", err)
	}
	return &m, nil
}

// Expect reads one message and checks its type. An error message from the
// peer becomes a *ChildError.
func Expect(r io.Reader, typ string) (*Message, error) {
	m, err := Read(r)
	if err != nil {
		return nil, err
	}
	if m.Type == TypeError {
		return nil, &ChildError{Step: m.Step, Message: m.Message}
	}
	if m.Type != typ {
		return nil, fmt.Errorf("protocol: got %q message, want %q", m.Type, typ)
	}
	return m, nil
}

// ChildError is a failure reported by the process inside the container.
type ChildError struct {
	Step    string
	Message string
}

func (e *ChildError) Error() string {
	if e.Step == "" {
		return e.Message
	}
	return e.Step + ": " + e.Message
}

// Errorf builds the error message the child sends.
func Errorf(step string, err error) *Message {
	return &Message{Type: TypeError, Step: step, Message: err.Error()}
}
