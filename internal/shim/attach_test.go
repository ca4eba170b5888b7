package shim

import (
	"bufio"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestAttachAnsweredOnlyOnceRegistered holds the stdio's lock so that an
// attach cannot register, and checks that the client hears nothing
// meanwhile: the engine starts a container as soon as its attach is
// answered, so an answer before the registration let the first output
// go to nobody (a guest under emulation lost a `docker run`'s whole
// output that way). Once registered, output reaches the client.
func TestAttachAnsweredOnlyOnceRegistered(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	serverEnd, clientEnd := os.NewFile(uintptr(fds[0]), "server"), os.NewFile(uintptr(fds[1]), "client")
	defer clientEnd.Close()
	s := newServer(Config{ID: "c"})
	io := newStdio(false, false)
	s.init = &process{srv: s, status: StatusCreated, exited: make(chan struct{}), io: io}

	io.mu.Lock()
	served := make(chan struct{})
	go func() {
		defer close(served)
		s.attach(serverEnd, bufio.NewReader(serverEnd), &request{Op: opAttach, Stdout: true})
	}()
	answered := make(chan error, 1)
	br := bufio.NewReader(clientEnd)
	go func() {
		var resp response
		if err := readJSONLine(br, &resp); err != nil {
			answered <- err
			return
		}
		if resp.Error != nil {
			answered <- fromWire(resp.Error)
			return
		}
		answered <- nil
	}()
	select {
	case err := <-answered:
		io.mu.Unlock()
		t.Fatalf("attach answered (%v) before it was registered", err)
	case <-time.After(300 * time.Millisecond):
	}
	io.mu.Unlock()
	if err := <-answered; err != nil {
		t.Fatal(err)
	}

	io.broadcast(streamStdout, []byte("first\n"))
	stream, payload, err := readFrame(br, make([]byte, frameChunk))
	if err != nil || stream != streamStdout || string(payload) != "first\n" {
		t.Fatalf("first frame: stream %d %q %v; want stdout %q", stream, payload, err, "first\n")
	}
	clientEnd.Close()
	<-served
}
