package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxLines bounds the stdout lines a Process keeps for WaitStdout.
const maxLines = 10000

// ProcessConfig describes a program to run.
type ProcessConfig struct {
	// Name labels the process in logs and names its log files.
	Name string
	// NS is the namespace to run in; nil runs in the caller's.
	NS *Namespace
	// Path and Args are the program and its arguments (without argv[0]).
	Path string
	Args []string
	// Env is added to a minimal environment (PATH, HOME, LANG).
	Env []string
	// Dir is the working directory; empty means LogDir.
	Dir string
	// LogDir receives <Name>.stdout and <Name>.stderr.
	LogDir string
	// Stdin keeps a pipe to the program's standard input open until Stop,
	// for programs that exit when it closes (TOR_PT_EXIT_ON_STDIN_CLOSE).
	Stdin bool
}

// Process is a running program whose output goes to log files.
type Process struct {
	Name       string
	StdoutPath string
	StderrPath string

	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}

	mu       sync.Mutex
	lines    []string
	changed  chan struct{} // closed and replaced whenever lines grows
	waitErr  error
	state    *os.ProcessState
	stopping bool
}

// StartProcess starts a program. Inside a namespace it runs as
// "ip netns exec NS prog args...", which execs the program in place, so
// PID is the program's own.
func StartProcess(cfg ProcessConfig) (*Process, error) {
	if cfg.Name == "" || cfg.Path == "" || cfg.LogDir == "" {
		return nil, errors.New("testbed: process needs Name, Path and LogDir")
	}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	argv := append([]string{cfg.Path}, cfg.Args...)
	if cfg.NS != nil {
		argv = append([]string{"ip", "netns", "exec", cfg.NS.Name}, argv...)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", cfg.Name, err)
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Dir: cfg.Dir}
	if cmd.Dir == "" {
		cmd.Dir = cfg.LogDir
	}
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"LANG=C",
	}, cfg.Env...)
	// Programs die with the test binary even when its cleanups never run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}

	p := &Process{
		Name:       cfg.Name,
		StdoutPath: filepath.Join(cfg.LogDir, cfg.Name+".stdout"),
		StderrPath: filepath.Join(cfg.LogDir, cfg.Name+".stderr"),
		cmd:        cmd,
		done:       make(chan struct{}),
		changed:    make(chan struct{}),
	}
	outFile, err := os.Create(p.StdoutPath)
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	errFile, err := os.Create(p.StderrPath)
	if err != nil {
		outFile.Close()
		return nil, fmt.Errorf("testbed: %w", err)
	}
	cmd.Stderr = errFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		outFile.Close()
		errFile.Close()
		return nil, fmt.Errorf("testbed: %w", err)
	}
	if cfg.Stdin {
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			outFile.Close()
			errFile.Close()
			return nil, fmt.Errorf("testbed: %w", err)
		}
	}
	if err := cmd.Start(); err != nil {
		outFile.Close()
		errFile.Close()
		return nil, fmt.Errorf("testbed: start %s: %w", cfg.Name, err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		p.readStdout(stdout, outFile)
	}()
	go func() {
		<-copied
		err := cmd.Wait()
		outFile.Close()
		errFile.Close()
		p.mu.Lock()
		p.waitErr = err
		p.state = cmd.ProcessState
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// readStdout copies the program's stdout to the log file line by line and
// keeps the first maxLines lines for WaitStdout.
func (p *Process) readStdout(r io.Reader, log io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(log, line)
		p.mu.Lock()
		if len(p.lines) < maxLines {
			p.lines = append(p.lines, line)
			close(p.changed)
			p.changed = make(chan struct{})
		}
		p.mu.Unlock()
	}
	// A line too long for the scanner: drain the rest so the program never
	// blocks on a full pipe.
	io.Copy(log, r)
}

// PID is the program's process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the program has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// WaitStdout waits until a line of stdout satisfies match and returns it.
// It fails if the program exits first.
func (p *Process) WaitStdout(ctx context.Context, match func(string) bool) (string, error) {
	seen := 0
	for {
		p.mu.Lock()
		lines, changed := p.lines, p.changed
		p.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if match(lines[seen]) {
				return lines[seen], nil
			}
		}
		select {
		case <-changed:
		case <-p.done:
			// The reader has finished, so lines is final: check it once more.
			p.mu.Lock()
			lines = p.lines
			p.mu.Unlock()
			for ; seen < len(lines); seen++ {
				if match(lines[seen]) {
					return lines[seen], nil
				}
			}
			return "", fmt.Errorf("testbed: %s exited (%s) before the expected output; see %s", p.Name, p.ExitStatus(), p.StderrPath)
		case <-ctx.Done():
			return "", fmt.Errorf("testbed: %s: waiting for output: %w", p.Name, ctx.Err())
		}
	}
}

// StdoutLines returns the stdout lines seen so far.
func (p *Process) StdoutLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Stop closes stdin (if piped), sends SIGTERM, and after grace sends
// SIGKILL; it returns once the program has exited. Only the program's own
// PID is signalled.
func (p *Process) Stop(grace time.Duration) {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	if p.stdin != nil {
		p.stdin.Close()
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return
	case <-t.C:
	}
	p.cmd.Process.Kill()
	<-p.done
}

// Running reports whether the program has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ExitStatus describes how the program ended ("running" if it has not).
func (p *Process) ExitStatus() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		return "running"
	}
	return p.state.String()
}

// ExitedUnexpectedly reports whether the program ended before Stop was
// called, with how it ended.
func (p *Process) ExitedUnexpectedly() (bool, string) {
	p.mu.Lock()
	stopping := p.stopping
	p.mu.Unlock()
	if stopping || p.Running() {
		return false, ""
	}
	return true, p.ExitStatus()
}

// Tail returns up to n trailing lines of path, for error messages.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitFile polls path until its content satisfies match (the whole file is
// passed in), for programs that log to a file of their own.
func WaitFile(ctx context.Context, path string, match func(string) bool) error {
	return WaitUntil(ctx, path, func() (bool, error) {
		b, err := os.ReadFile(path)
		return err == nil && match(string(b)), nil
	})
}

// PollInterval is how often WaitFile and WaitUntil look again.
const PollInterval = 100 * time.Millisecond

// WaitUntil calls cond every PollInterval until it reports true, returns
// an error (which ends the wait), or ctx ends. For state that offers no
// event to wait on: a file another program writes, a counter in a server.
func WaitUntil(ctx context.Context, what string, cond func() (bool, error)) error {
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("testbed: waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testbed: waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}
