package registry

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binary is where Debian's docker-registry package installs the registry.
const Binary = "/usr/bin/docker-registry"

// Registry is a running docker-registry on 127.0.0.1.
type Registry struct {
	Host     string // "127.0.0.1:port"
	URL      string // "http://127.0.0.1:port"
	User     string // credentials, when started with auth
	Password string
	Dir      string // config, storage and log
	LogPath  string

	// TokenURL is the token server's realm (WithTokenAuth only).
	TokenURL string

	token *tokenServer

	cmd  *exec.Cmd
	done chan struct{}
}

// Option configures Start.
type Option func(*options)

type options struct {
	basic      bool
	token      bool
	user, pass string
}

// WithBasicAuth protects the registry with an htpasswd file holding user
// and pass (bcrypt).
func WithBasicAuth(user, pass string) Option {
	return func(o *options) { o.basic, o.token, o.user, o.pass = true, false, user, pass }
}

// WithTokenAuth protects the registry with docker's token auth: an
// in-process token server gives user (and only user, with pass) tokens for
// exactly the scopes asked for; anonymous requests get tokens that grant
// nothing.
func WithTokenAuth(user, pass string) Option {
	return func(o *options) { o.token, o.basic, o.user, o.pass = true, false, user, pass }
}

// Start runs a registry for the test and stops it when the test ends. It
// skips the test when the registry is not installed, unless
// BERTH_TEST_REQUIRE_FIXTURES is set.
func Start(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if _, err := os.Stat(Binary); err != nil {
		if os.Getenv("BERTH_TEST_REQUIRE_FIXTURES") == "" {
			t.Skipf("registry unavailable (install docker-registry, or set BERTH_TEST_REQUIRE_FIXTURES=1 to fail instead): %v", err)
		}
		t.Fatalf("registry: %v (install the docker-registry package)", err)
	}
	r := &Registry{Dir: tempDir(t), User: o.user, Password: o.pass}
	r.LogPath = filepath.Join(r.Dir, "registry.log")
	var auth string
	switch {
	case o.basic:
		path := filepath.Join(r.Dir, "htpasswd")
		if err := writeHtpasswd(path, o.user, o.pass); err != nil {
			t.Fatalf("registry: %v", err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", path)
	case o.token:
		ts, err := startTokenServer(t, r.Dir, o.user, o.pass)
		if err != nil {
			t.Fatalf("registry: token server: %v", err)
		}
		r.TokenURL, r.token = ts.realm, ts
		auth = fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			ts.realm, tokenService, tokenIssuer, ts.certPath)
	}
	// The port is picked by binding :0 and handed to the registry, which
	// can lose it to another process in between: try again then.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = r.start(auth); err == nil {
			break
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("registry: %v\n%s", err, r.logTail())
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("registry log (%s), last lines:\n%s", r.LogPath, r.logTail())
		}
	})
	return r
}

// tempDir is a directory for the registry's files, removed at the end of
// the test: on tmpfs when /dev/shm is there, because the registry writes
// several small files per blob and file creation on this machine's disk
// is slow.
func tempDir(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "berth-registry-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start writes the configuration and runs the registry until /v2/ answers.
func (r *Registry) start(auth string) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("pick a port: %w", err)
	}
	r.Host = fmt.Sprintf("127.0.0.1:%d", port)
	r.URL = "http://" + r.Host
	secret := make([]byte, 16)
	rand.Read(secret)
	storage := filepath.Join(r.Dir, "storage")
	// delete.enabled lets tests remove manifests; health checks and upload
	// purging would only add log noise and timers to a registry that lives
	// seconds.
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
  headers:
    X-Content-Type-Options: [nosniff]
%s`, storage, r.Host, hex.EncodeToString(secret), auth)
	cfgPath := filepath.Join(r.Dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	log, err := os.OpenFile(r.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(Binary, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = log, log
	// REGISTRY_* variables would override the configuration.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + r.Dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", Binary, err)
	}
	r.cmd = cmd
	r.done = make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(r.done)
	}()
	deadline := time.Now().Add(15 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			tail := r.logTail()
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("registry exited: %v: address already in use", waitErr)
			}
			return fmt.Errorf("registry exited before answering: %v", waitErr)
		default:
		}
		resp, err := client.Get(r.URL + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.stop()
	return errors.New("registry did not answer /v2/ within 15s")
}

// stop terminates the registry and reaps it.
func (r *Registry) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(3 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

// logTail is the end of the registry's log.
func (r *Registry) logTail() string {
	b, err := os.ReadFile(r.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// TokenRequests lists the requests the token server answered, in order
// (WithTokenAuth only).
func (r *Registry) TokenRequests() []TokenRequest {
	if r.token == nil {
		return nil
	}
	r.token.mu.Lock()
	defer r.token.mu.Unlock()
	return append([]TokenRequest(nil), r.token.requests...)
}
