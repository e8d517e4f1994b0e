package nemesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a process the nemesis may kill, restart, pause and resume: an
// agent. Its command line is fixed, so a restart listens where the
// process did before.
type Proc struct {
	Name string
	Path string
	Args []string
	Env  []string
	// Ready, if set, is called with the output so far until it returns
	// true: the process serves.
	Ready func(output string) bool
	// Output, if set, gets a copy of the process's output.
	Output io.Writer

	mu sync.Mutex
	// extra are arguments added after Args (SetExtraArgs), from the
	// next start on.
	extra  []string
	cmd    *exec.Cmd
	out    *OutputBuffer
	exited chan struct{}
	paused bool
}

// Start starts the process and waits (at most 30s) until Ready.
func (p *Proc) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.cmd != nil {
		select {
		case <-p.exited:
		default:
			p.mu.Unlock()
			return fmt.Errorf("%s: already running", p.Name)
		}
	}
	out := &OutputBuffer{}
	var w io.Writer = out
	if p.Output != nil {
		w = io.MultiWriter(out, p.Output)
	}
	cmd := exec.Command(p.Path, append(slices.Clip(p.Args), p.extra...)...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	p.cmd, p.out, p.exited, p.paused = cmd, out, exited, false
	p.mu.Unlock()
	if p.Ready == nil {
		return nil
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for !p.Ready(out.String()) {
		select {
		case <-exited:
			return fmt.Errorf("%s exited before serving (%v):\n%s", p.Name, cmd.ProcessState, tail(out.String(), 30))
		case <-deadline.C:
			return fmt.Errorf("%s not serving after 30s:\n%s", p.Name, tail(out.String(), 30))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// childAttr makes a child process die with the process that started it
// (Pdeathsig: even when that one is SIGKILLed, and whether or not the
// child is stopped), and puts it in a process group of its own, so that
// a terminal's ^C reaches floe torture, which stops its children itself.
// Linux sends the signal when the thread that started the child exits;
// Go's runtime does not end its threads while the process lives (only a
// goroutine that locked its thread and returned would), so this is the
// process's death.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// SetExtraArgs sets arguments added after Args from the next start on
// (nil: none).
func (p *Proc) SetExtraArgs(args ...string) {
	p.mu.Lock()
	p.extra = args
	p.mu.Unlock()
}

// Restart stops the process (SIGTERM, SIGKILL after timeout) if it runs
// and starts it again.
func (p *Proc) Restart(ctx context.Context, timeout time.Duration) error {
	if p.Running() {
		if err := p.Terminate(timeout); err != nil {
			return err
		}
	}
	return p.Start(ctx)
}

// Pid is the process id of the running process (0 if none).
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Output returns what the current (or last) process wrote.
func (p *Proc) OutputText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out == nil {
		return ""
	}
	return p.out.String()
}

// Kill sends SIGKILL (resuming a paused process is not needed for that)
// and waits until the process is gone.
func (p *Proc) Kill() error {
	return p.signalAndWait(syscall.SIGKILL, 10*time.Second)
}

// Terminate sends SIGTERM and waits at most timeout, then SIGKILL.
func (p *Proc) Terminate(timeout time.Duration) error {
	p.Resume()
	if err := p.signalAndWait(syscall.SIGTERM, timeout); err != nil {
		return p.Kill()
	}
	return nil
}

func (p *Proc) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%v %s: %w", sig, p.Name, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s still running %v after %v", p.Name, timeout, sig)
	}
}

// Pause sends SIGSTOP.
func (p *Proc) Pause() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s: not running", p.Name)
	}
	p.paused = true
	return p.cmd.Process.Signal(syscall.SIGSTOP)
}

// Resume sends SIGCONT if the process was paused.
func (p *Proc) Resume() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || !p.paused {
		return nil
	}
	p.paused = false
	return p.cmd.Process.Signal(syscall.SIGCONT)
}

// Running reports whether the process is alive.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Kill is the fault that SIGKILLs p and, on Heal, starts it again.
func Kill(p *Proc) Fault {
	return New("kill", p.Name,
		func(context.Context) error { return p.Kill() },
		func(ctx context.Context) error {
			if p.Running() {
				return nil
			}
			return p.Start(ctx)
		})
}

// Pause is the fault that SIGSTOPs p and, on Heal, SIGCONTs it.
func Pause(p *Proc) Fault {
	return New("pause", p.Name,
		func(context.Context) error { return p.Pause() },
		func(context.Context) error { return p.Resume() })
}

// OutputBuffer collects a process's output; safe for the goroutine
// copying into it and for readers.
type OutputBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *OutputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *OutputBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Tail returns the last n lines collected.
func (b *OutputBuffer) Tail(n int) string { return tail(b.String(), n) }

// tail returns the last n lines of s, saying how many it left out.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n {
		return s
	}
	return fmt.Sprintf("[%d earlier lines]\n", len(lines)-n) + strings.Join(lines[len(lines)-n:], "")
}
