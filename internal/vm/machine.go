package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A Machine boots an Image in qemu to run one Job.
type Machine struct {
	Image *Image
	// Accel is the accelerator; empty means DetectAccel's choice.
	Accel Accel
	// Type is the qemu machine: "microvm" (the default) or "pc".
	Type      string
	CPUs      int
	MemoryMiB int
	// KernelArgs are appended to the guest kernel's command line.
	KernelArgs []string
	// ConsoleLog is where the guest's serial console is written; empty
	// means a file removed after the run (errors quote its end).
	ConsoleLog string
	// QEMU is the qemu binary; empty means qemu-system-x86_64.
	QEMU string
	// BootTimeout bounds the time from qemu's start to the job's first
	// line; Timeout the whole run. Zero means no bound.
	BootTimeout time.Duration
	Timeout     time.Duration
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// A Job is what a Machine runs: a shell script run as root by the guest
// agent once systemd is up.
type Job struct {
	// Script is sh code; its exit status is the job's.
	Script string
	// Shares are host directories mounted in the guest before Script runs.
	Shares []Share
	// RequireCgroupFS, when set, is the filesystem type /sys/fs/cgroup
	// must have in the guest, else the job fails without running.
	RequireCgroupFS string
	// Output receives the job's output (stdout and stderr), line by line
	// as the guest writes it, with the header lines first.
	Output io.Writer
}

// A Result is how a job ended. A job that ran and exited non-zero is a
// Result, not an error; errors are for guests that did not run the job.
type Result struct {
	ExitCode int
	// Kernel and CgroupFS are the header lines: uname -r and the
	// filesystem type of /sys/fs/cgroup in the guest.
	Kernel   string
	CgroupFS string
	// Accel is the accelerator used.
	Accel Accel
	// FirstLine is the time from qemu's start to the guest's first line,
	// FirstJobLine to the first line the job itself printed (zero if it
	// printed none), Total to qemu's exit.
	FirstLine    time.Duration
	FirstJobLine time.Duration
	Total        time.Duration
	// ConsoleLog is the text of the serial console's log, read when Run
	// fails (the error quotes its end).
	ConsoleLog string
}

// consoleTailLines is how much of the console log an error carries.
const consoleTailLines = 80

// Run boots the machine, runs job and returns its result once the guest
// has powered off.
func (m *Machine) Run(ctx context.Context, job Job) (*Result, error) {
	accel := m.Accel
	if accel == "" {
		var why string
		accel, why = DetectAccel()
		m.logf("accelerator %s: %s", accel, why)
	}
	res := &Result{Accel: accel, ExitCode: -1}

	runDir, err := os.MkdirTemp("", "berth-vm-run-")
	if err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	defer os.RemoveAll(runDir)
	jobDir := filepath.Join(runDir, "job")
	if err := os.Mkdir(jobDir, 0o755); err != nil {
		return nil, fmt.Errorf("create job directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(jobDir, jobScript), []byte(jobScriptText(job.Script, job.Shares, job.RequireCgroupFS)), 0o755); err != nil {
		return nil, fmt.Errorf("write job script: %w", err)
	}
	console := m.ConsoleLog
	if console == "" {
		console = filepath.Join(runDir, "console.log")
	}
	sock := filepath.Join(runDir, "out.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("listen for the guest's output: %w", err)
	}
	defer ln.Close()

	cfg := m.qemuConfig(accel)
	cfg.ConsoleLog, cfg.OutputSocket = console, sock
	cfg.Shares = append([]Share{{Tag: jobTag, HostPath: jobDir}}, job.Shares...)
	args, err := cfg.args()
	if err != nil {
		return nil, err
	}
	qemu := m.QEMU
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	cmd := exec.Command(qemu, args...)
	var qemuErr bytes.Buffer
	cmd.Stderr = &qemuErr
	// A guest must not outlive the run that started it, even when the
	// run is killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	// exited is closed when qemu has exited, with waitErr set.
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()

	lines := make(chan string)
	go readOutput(ln, lines)
	output := lines

	// fail kills qemu and returns err with what the guest's console and
	// qemu said.
	fail := func(err error) (*Result, error) {
		_ = cmd.Process.Kill()
		<-exited
		// Unblock the reader, which ends with the closed connection
		// or, if qemu never connected, with the listener.
		go func() {
			for range output {
			}
		}()
		res.Total = time.Since(start)
		res.ConsoleLog = readConsole(console)
		where := ""
		if m.ConsoleLog != "" {
			where = " of " + m.ConsoleLog
		}
		msg := fmt.Sprintf("%v\n--- guest console (last %d lines%s) ---\n%s\n--- end of guest console ---",
			err, consoleTailLines, where, tail(res.ConsoleLog, consoleTailLines))
		if s := strings.TrimSpace(qemuErr.String()); s != "" {
			msg += "\n--- qemu stderr ---\n" + s
		}
		return res, errors.New(msg)
	}

	var bootTimer, runTimer <-chan time.Time
	if m.BootTimeout > 0 {
		bootTimer = time.After(m.BootTimeout)
	}
	if m.Timeout > 0 {
		runTimer = time.After(m.Timeout)
	}
	qemuExited := exited
	inJob := false
	for lines != nil {
		select {
		case line, ok := <-lines:
			if !ok {
				lines = nil
				break
			}
			now := time.Since(start)
			if res.FirstLine == 0 {
				res.FirstLine = now
				bootTimer = nil
			}
			if !inJob {
				if v, ok := strings.CutPrefix(line, headerPrefix); ok {
					switch {
					case strings.HasPrefix(v, "kernel "):
						res.Kernel = strings.TrimSpace(strings.TrimPrefix(v, "kernel "))
					case strings.HasPrefix(v, "cgroupfs "):
						res.CgroupFS = strings.TrimSpace(strings.TrimPrefix(v, "cgroupfs "))
					case strings.TrimSpace(v) == "job":
						inJob = true
						continue // the marker is protocol, not output
					}
				}
			} else if res.FirstJobLine == 0 {
				res.FirstJobLine = now
			}
			if job.Output != nil {
				io.WriteString(job.Output, line)
			}
		case <-qemuExited:
			// A qemu that exits before connecting leaves Accept waiting:
			// closing the listener ends it. Lines already read still
			// arrive before lines is closed.
			qemuExited = nil
			ln.Close()
		case <-bootTimer:
			return fail(fmt.Errorf("guest did not start the job within %v (boot timeout)", m.BootTimeout))
		case <-runTimer:
			return fail(fmt.Errorf("guest run exceeded %v (timeout)", m.Timeout))
		case <-ctx.Done():
			return fail(fmt.Errorf("guest run: %w", ctx.Err()))
		}
	}
	// The output ends when qemu closes the socket, on exit. Wait for the
	// exit itself, still bounded.
	select {
	case <-exited:
	case <-runTimer:
		return fail(fmt.Errorf("guest run exceeded %v (timeout) while powering off", m.Timeout))
	case <-time.After(30 * time.Second):
		return fail(errors.New("guest did not power off within 30s of closing its output"))
	}
	res.Total = time.Since(start)
	if waitErr != nil {
		return fail(fmt.Errorf("qemu: %w", waitErr))
	}
	status, err := os.ReadFile(filepath.Join(jobDir, statusFile))
	if err != nil {
		return fail(errors.New("guest ended without recording the job's exit status (it crashed or never reached the job)"))
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(status)))
	if err != nil {
		return fail(fmt.Errorf("guest recorded a bad exit status %q", status))
	}
	res.ExitCode = code
	return res, nil
}

// readOutput accepts qemu's connection and sends each line (with its
// newline; a last partial line without) on lines, closing it at the end.
func readOutput(ln net.Listener, lines chan<- string) {
	defer close(lines)
	conn, err := ln.Accept()
	if err != nil {
		return
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			lines <- line
		}
		if err != nil {
			return
		}
	}
}

func readConsole(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no console log: %v)", err)
	}
	// The console is a terminal: lines end in CR LF.
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

func (m *Machine) qemuConfig(accel Accel) qemuConfig {
	c := qemuConfig{
		Accel:     accel,
		Machine:   m.Type,
		CPUs:      m.CPUs,
		MemoryMiB: m.MemoryMiB,
		Initrd:    m.Image.Initrd(),
		Disk:      m.Image.Disk(),
	}
	if c.Machine == "" {
		c.Machine = "microvm"
	}
	if c.CPUs == 0 {
		c.CPUs = 2
	}
	if c.MemoryMiB == 0 {
		c.MemoryMiB = 2048
	}
	c.Kernel = m.Image.Kernel.Vmlinux()
	if c.Machine == "pc" {
		c.Kernel = m.Image.Kernel.Vmlinuz()
	}
	tsc := 0
	if accel == TCG {
		if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
			tsc = hostTSCkHz(string(b))
		}
	}
	c.Cmdline = kernelCmdline(accel, tsc, m.KernelArgs)
	return c
}

func (m *Machine) logf(format string, args ...any) {
	if m.Log != nil {
		fmt.Fprintf(m.Log, "berth-vm: "+format+"\n", args...)
	}
}
