package syncmsg

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Message types.
const (
	// TypeHooks: the init has made its mounts and waits, before
	// pivot_root, for the runtime's prestart and createRuntime hooks.
	TypeHooks = "hooks"
	// TypeHooksDone: the runtime ran them; the init goes on.
	TypeHooksDone = "hooks-done"
	// TypeReady: the set-up is done; an init then waits on the exec fifo.
	TypeReady = "ready"
	// TypeError: the set-up failed in Step; the child exits.
	TypeError = "error"
)

// maxMessage bounds what either side will allocate for one frame; a plan
// with a large seccomp program is a few tens of KiB.
const maxMessage = 16 << 20

// Version is the protocol's version: change it with any change to the
// messages or to the plan's framing, so that a parent and a child built
// apart refuse each other rather than misread what one of them sends.
const Version = "2"

// VersionVar is the environment variable in which the parent names the
// Version it speaks; the child (initstage's plan.c) refuses any other.
const VersionVar = "_BERTH_SYNC_VERSION"

// VersionEnv is the child's environment entry naming the parent's Version.
func VersionEnv() string { return VersionVar + "=" + Version }

// Message is one JSON frame; Step and Message are set for TypeError.
type Message struct {
	Type    string `json:"type"`
	Step    string `json:"step,omitempty"`
	Message string `json:"message,omitempty"`
}

// Write sends one message as a frame.
func Write(w io.Writer, m *Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s message: %w", m.Type, err)
	}
	if err := WriteFrame(w, body); err != nil {
		return fmt.Errorf("send %s message: %w", m.Type, err)
	}
	return nil
}

// WriteFrame sends body, a plan or an encoded message, as one frame: its
// 4-byte big-endian length, then body, in one write.
func WriteFrame(w io.Writer, body []byte) error {
	if len(body) > maxMessage {
		return fmt.Errorf("frame of %d bytes exceeds %d", len(body), maxMessage)
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_, err := w.Write(buf)
	return err
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

// Expect reads one message and requires type typ. An error message from
// the child becomes a *ChildError.
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

// ChildError is a failure the child reported: the set-up step and what
// went wrong.
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

// Errorf makes an error message for step.
func Errorf(step string, err error) *Message {
	return &Message{Type: TypeError, Step: step, Message: err.Error()}
}
