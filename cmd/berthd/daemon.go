package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-project/berth/internal/engine"
	"github.com/berth-project/berth/internal/events"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/server/docker"
	"github.com/berth-project/berth/internal/server/socket"
	digest "github.com/opencontainers/go-digest"
)

// shutdownGrace is how long running requests (a pull, a save) may go on
// after SIGTERM before their connections are cut.
const shutdownGrace = 15 * time.Second

type options struct {
	dataRoot, execRoot string
	hosts              []string
	mirrors, insecure  []string
	storageDriver      string
	logLevel           string
	debug              bool
	pidfile, group     string
	runtime, shim      string
	execOpts           []string
	cgroupParent       string
	addRuntimes        []string
	initPath           string
	bridge, bip        string
	firewall           string
	dns                []string
	netPool            int
}

func run(o options) error {
	log, err := newLogger(o)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("berthd must run as root (rootless mode is not there yet)")
	}
	driver, err := snapshotterName(o.storageDriver)
	if err != nil {
		return err
	}
	systemdCgroup, err := cgroupDriver(o.execOpts)
	if err != nil {
		return err
	}
	if len(o.hosts) == 0 {
		o.hosts = []string{"unix://" + filepath.Join(o.execRoot, "berthd.sock")}
	}
	var paths []string
	for _, h := range o.hosts {
		p, err := socket.ParseHost(h)
		if err != nil {
			return err
		}
		paths = append(paths, p)
	}
	gid, err := socket.GroupID(o.group)
	if err != nil {
		return err
	}
	if o.pidfile == "" {
		o.pidfile = filepath.Join(o.execRoot, "berthd.pid")
	}

	// Both roots let others traverse (0711) but not list them: the
	// default socket lives in the exec-root and the socket group must
	// reach it; every file in them is root's alone.
	if err := os.MkdirAll(o.execRoot, 0o711); err != nil {
		return fmt.Errorf("exec-root: %w", err)
	}
	if err := os.Chmod(o.execRoot, 0o711); err != nil {
		return fmt.Errorf("exec-root: %w", err)
	}
	if err := os.MkdirAll(o.dataRoot, 0o711); err != nil {
		return fmt.Errorf("data-root: %w", err)
	}
	if err := os.Chmod(o.dataRoot, 0o711); err != nil {
		return fmt.Errorf("data-root: %w", err)
	}
	lock, err := lockExecRoot(o.execRoot, o.pidfile)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := writePidfile(o.pidfile, os.Getpid()); err != nil {
		return err
	}
	defer os.Remove(o.pidfile)
	id, err := engineID(o.dataRoot)
	if err != nil {
		return err
	}

	bins, err := findBinaries(o)
	if err != nil {
		return err
	}
	// The image store asks the engine whether a container uses an image
	// (rmi without -f, prune); the engine is made after the store.
	var eng *engine.Engine
	store, err := image.New(image.Config{
		Root:        filepath.Join(o.dataRoot, "image"),
		Snapshotter: driver,
		Mirrors:     o.mirrors,
		Insecure:    o.insecure,
		InUse: func(id digest.Digest) bool {
			return eng != nil && eng.ImageInUse(id)
		},
	})
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close image store", "err", err)
		}
	}()

	nets, err := openNetwork(context.Background(), o, log)
	if err != nil {
		return err
	}
	defer func() {
		// Bridges and endpoints stay for the containers left running.
		if err := nets.Close(); err != nil {
			log.Error("close networks", "err", err)
		}
	}()

	bus := events.NewBus()
	// engine.New re-attaches to the containers a previous berthd left
	// running (live restore) and reconciles the networks with them
	// (endpoints of containers that are gone are released) before the
	// API answers.
	eng, err = engine.New(engine.Config{
		DataRoot:      o.dataRoot,
		ExecRoot:      o.execRoot,
		Images:        store,
		Runtime:       bins.runtime,
		Runtimes:      bins.runtimes,
		ShimBinary:    bins.shim,
		InitPath:      bins.init,
		SystemdCgroup: systemdCgroup,
		CgroupParent:  o.cgroupParent,
		Network:       nets,
		Events:        bus.Publish,
		Log: func(format string, args ...any) {
			log.Warn(fmt.Sprintf(format, args...))
		},
	})
	if err != nil {
		return err
	}
	defer func() {
		// The containers keep running; the next berthd finds them.
		if err := eng.Close(); err != nil {
			log.Error("close engine", "err", err)
		}
	}()

	api := docker.New(docker.Config{
		Images: store, Containers: eng, Events: bus,
		Version: version, GitCommit: gitCommit, BuildTime: buildTime,
		DataRoot: o.dataRoot, StorageDriver: driver,
		Mirrors: o.mirrors, Insecure: o.insecure,
		ID: id, Debug: o.debug || o.logLevel == "debug", Log: log,
		SystemdCgroup: systemdCgroup,
	})
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(api.Stop)

	var listeners []net.Listener
	for _, p := range paths {
		l, err := socket.Listen(p, gid)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		listeners = append(listeners, l)
	}
	serveErr := make(chan error, len(listeners))
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("serve on %s: %w", l.Addr(), err)
			}
		}()
	}
	log.Info("berthd started", "version", version, "data-root", o.dataRoot, "exec-root", o.execRoot,
		"hosts", strings.Join(paths, ","), "storage-driver", driver, "runtime", bins.runtime, "shim", bins.shim, "firewall", nets.Firewall())

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	var runErr error
	select {
	case s := <-sigs:
		log.Info("shutting down", "signal", s.String())
	case runErr = <-serveErr:
		log.Error("API server failed", "err", runErr)
	}

	// Stop accepting, end event streams, give running requests the grace
	// period, then cut what is left.
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("requests still running after the grace period; closing their connections", "err", err)
		srv.Close()
	}
	wg.Wait()
	log.Info("berthd stopped")
	return runErr
}

func newLogger(o options) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(o.logLevel) {
	case "debug":
		level = slog.LevelDebug
	case "info", "":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error", "fatal", "panic":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", o.logLevel)
	}
	if o.debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}

// snapshotterName maps --storage-driver to the image store's snapshotter,
// accepting docker's names for the overlay driver.
func snapshotterName(s string) (string, error) {
	switch s {
	case "":
		return "", nil
	case "overlay", "overlay2", "overlayfs":
		return "overlay", nil
	case "copy", "vfs", "native":
		return "copy", nil
	}
	return "", fmt.Errorf("invalid --storage-driver %q: want overlay or copy", s)
}

// engineID returns the daemon's ID, made once and kept in the data root so
// it survives restarts (docker info's ID).
func engineID(dataRoot string) (string, error) {
	path := filepath.Join(dataRoot, "engine-id")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("engine id: %w", err)
	}
	id := rand.Text()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("engine id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("engine id: %w", err)
	}
	return id, nil
}
