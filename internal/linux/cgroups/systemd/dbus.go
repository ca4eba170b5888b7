package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/berth-project/berth/internal/linux/cgroups"
)

// The conversation with systemd, one D-Bus connection per driver
// operation (org.freedesktop.systemd1(5)):
//
//	runtime                                     systemd (PID 1)
//	  |-- connect: /run/systemd/private as root,     |
//	  |   else the system bus; AUTH EXTERNAL <uid> -->|
//	  |-- StartTransientUnit(unit, "replace", props) >|  Apply
//	  |<------------------------------ job object path|
//	  |<- signal JobRemoved(id, job, unit, "done") ---|  the unit runs
//	  |-- Get ControlGroup of the unit -------------->|
//	  |-- SetUnitProperties(unit, runtime, props) --->|  Set
//	  |-- StopUnit(unit, "replace") ----------------->|  Destroy
//	  |<- signal JobRemoved(..., "done") -------------|
//	  |-- ResetFailedUnit(unit) --------------------->|
//
// systemd sends JobRemoved on its private socket to every client, and on
// the system bus to the client that queued the job, so no Subscribe call
// is needed. The job signal is not trusted alone: when it does not come
// in time, the unit's ActiveState decides.

// Where systemd listens. The private socket is systemd's own, root only,
// and works without a D-Bus daemon (minimal images have none); the system
// bus is the documented route and the only one for other users.
var (
	privateSocket   = "/run/systemd/private"
	systemBusSocket = "/run/dbus/system_bus_socket"
	// bootedDir exists when systemd is PID 1 (sd_booted(3)).
	bootedDir = "/run/systemd/system"
)

// jobTimeout bounds each call and the wait for its job, as runc bounds
// the wait for its scope (30 s).
const jobTimeout = 30 * time.Second

// bus is what the driver asks of systemd. *sdBus speaks D-Bus; tests use
// a fake.
type bus interface {
	// StartTransientUnit starts a transient unit and waits for its job.
	StartTransientUnit(ctx context.Context, name string, props []sd.Property) error
	SetUnitProperties(ctx context.Context, name string, props []sd.Property) error
	// StopUnit stops a unit and waits for its job.
	StopUnit(ctx context.Context, name string) error
	ResetFailedUnit(ctx context.Context, name string) error
	// ControlGroup returns the unit's cgroup, from the root of systemd's
	// hierarchy: "/system.slice/berth-abc.scope".
	ControlGroup(ctx context.Context, name string) (string, error)
	ActiveState(ctx context.Context, name string) (string, error)
	Close()
}

// errNotBooted tells whether the host runs systemd as PID 1: it checks
// what sd_booted(3) checks, then that one of its sockets is there. The
// error wraps cgroups.ErrSystemdUnsupported.
func errNotBooted() error {
	if fi, err := os.Stat(bootedDir); err != nil || !fi.IsDir() {
		return fmt.Errorf("systemd is not PID 1 on this host (no %s): %w", bootedDir, cgroups.ErrSystemdUnsupported)
	}
	for _, s := range busSockets() {
		if fi, err := os.Stat(s); err == nil && fi.Mode().Type() == os.ModeSocket {
			return nil
		}
	}
	return fmt.Errorf("systemd runs but its D-Bus sockets (%s) are absent: %w",
		strings.Join(busSockets(), ", "), cgroups.ErrSystemdUnsupported)
}

// busSockets lists the sockets to try, in order.
func busSockets() []string {
	var out []string
	if os.Geteuid() == 0 {
		out = append(out, privateSocket)
	}
	sys := systemBusSocket
	if a, ok := strings.CutPrefix(os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"), "unix:path="); ok && !strings.Contains(a, ",") {
		sys = a
	}
	return append(out, sys)
}

// dialBus connects to systemd; failure wraps
// cgroups.ErrSystemdUnsupported, since without the connection the driver
// can do nothing.
func dialBus() (bus, error) {
	var errs []error
	for _, s := range busSockets() {
		c, err := dialSocket(s, s == privateSocket)
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", s, err))
	}
	return nil, fmt.Errorf("connect to systemd: %w: %w", errors.Join(errs...), cgroups.ErrSystemdUnsupported)
}

// dialSocket opens a go-systemd connection, which is two D-Bus
// connections (calls and signals), each authenticated with the numeric
// uid: AUTH EXTERNAL needs no user database, which the static runtime
// has not. The bus daemon wants a Hello; systemd's private socket does
// not.
func dialSocket(sock string, direct bool) (*sdBus, error) {
	// The connections live as long as ctx: cancelled by the timer if
	// connecting hangs, else by Close.
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(jobTimeout, cancel)
	defer timer.Stop()
	c, err := sd.NewConnection(func() (*dbus.Conn, error) {
		conn, err := dbus.Dial("unix:path="+sock, dbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			conn.Close()
			return nil, err
		}
		if !direct {
			if err := conn.Hello(); err != nil {
				conn.Close()
				return nil, err
			}
		}
		return conn, nil
	})
	if err != nil {
		cancel()
		return nil, err
	}
	return &sdBus{c: c, cancel: cancel}, nil
}

// sdBus is the bus over go-systemd.
type sdBus struct {
	c      *sd.Conn
	cancel context.CancelFunc
}

func (b *sdBus) Close() {
	b.c.Close()
	b.cancel()
}

func (b *sdBus) StartTransientUnit(ctx context.Context, name string, props []sd.Property) error {
	// Buffered: go-systemd's dispatcher blocks on the send otherwise,
	// and this function may have returned on its timeout.
	ch := make(chan string, 1)
	if _, err := b.c.StartTransientUnitContext(ctx, name, "replace", props, ch); err != nil {
		return err
	}
	return b.waitJob(ctx, name, ch, "active")
}

func (b *sdBus) StopUnit(ctx context.Context, name string) error {
	ch := make(chan string, 1)
	if _, err := b.c.StopUnitContext(ctx, name, "replace", ch); err != nil {
		return err
	}
	return b.waitJob(ctx, name, ch, "inactive")
}

// waitJob waits for a job's result. When no result comes before ctx
// ends, the unit's state decides: a JobRemoved lost on the way must not
// fail an operation that succeeded.
func (b *sdBus) waitJob(ctx context.Context, name string, ch <-chan string, want string) error {
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("systemd job for %s: result %q", name, res)
		}
		return nil
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := b.ActiveState(sctx, name)
		if err == nil && (st == want || (want == "inactive" && st == "failed")) {
			return nil
		}
		return fmt.Errorf("systemd job for %s: no result within %s (unit %q): %w", name, jobTimeout, st, ctx.Err())
	}
}

func (b *sdBus) SetUnitProperties(ctx context.Context, name string, props []sd.Property) error {
	// runtime=true: the settings are for this boot only, like the unit.
	return b.c.SetUnitPropertiesContext(ctx, name, true, props...)
}

func (b *sdBus) ResetFailedUnit(ctx context.Context, name string) error {
	return b.c.ResetFailedUnitContext(ctx, name)
}

func (b *sdBus) ControlGroup(ctx context.Context, name string) (string, error) {
	iface := "Scope"
	if strings.HasSuffix(name, ".slice") {
		iface = "Slice"
	}
	p, err := b.c.GetUnitTypePropertyContext(ctx, name, iface, "ControlGroup")
	if err != nil {
		return "", err
	}
	s, ok := p.Value.Value().(string)
	if !ok {
		return "", fmt.Errorf("ControlGroup of %s: got %s, want a string", name, p.Value.Signature())
	}
	return s, nil
}

func (b *sdBus) ActiveState(ctx context.Context, name string) (string, error) {
	p, err := b.c.GetUnitPropertyContext(ctx, name, "ActiveState")
	if err != nil {
		return "", err
	}
	s, ok := p.Value.Value().(string)
	if !ok {
		return "", fmt.Errorf("ActiveState of %s: got %s, want a string", name, p.Value.Signature())
	}
	return s, nil
}

// D-Bus error names systemd answers with.
const (
	errUnitExists   = "org.freedesktop.systemd1.UnitExists"
	errNoSuchUnit   = "org.freedesktop.systemd1.NoSuchUnit"
	errReadOnly     = "org.freedesktop.DBus.Error.PropertyReadOnly"
	errInvalidArgs  = "org.freedesktop.DBus.Error.InvalidArgs"
	errUnknownProp  = "org.freedesktop.DBus.Error.UnknownProperty"
	errNotLoaded    = "org.freedesktop.systemd1.LoadFailed"
	errNoSuchObject = "org.freedesktop.DBus.Error.UnknownObject"
)

// dbusErrorName returns the D-Bus error name in err, "" when there is
// none. godbus returns dbus.Error by value from calls, and by pointer
// from NewError.
func dbusErrorName(err error) string {
	var v dbus.Error
	if errors.As(err, &v) {
		return v.Name
	}
	var p *dbus.Error
	if errors.As(err, &p) && p != nil {
		return p.Name
	}
	return ""
}

// isGone reports whether err says the unit does not exist (any more).
func isGone(err error) bool {
	switch dbusErrorName(err) {
	case errNoSuchUnit, errNotLoaded, errNoSuchObject:
		return true
	}
	return false
}

// isUnknownProperty reports whether systemd refused a property it does
// not know. systemd says "Cannot set property X, or unknown property."
// with PropertyReadOnly; older ones use InvalidArgs.
func isUnknownProperty(err error) bool {
	switch dbusErrorName(err) {
	case errReadOnly, errUnknownProp:
		return true
	case errInvalidArgs:
		return strings.Contains(err.Error(), "nknown property")
	}
	return false
}
