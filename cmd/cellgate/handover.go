package main

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/cellgate/cellgate"
)

// Environment of a handover successor: which inherited descriptors are the
// client and admin listeners and the pipe to report readiness on. Inherited
// descriptors start at 3 (os/exec ExtraFiles).
const (
	envInherit = "CELLGATE_HANDOVER" // "client=3,admin=4,ready=5"
	readyLine  = "ready"
	// reapWait bounds how long a successor killed for not being ready may
	// take to exit (and so release the journal lock) before the old
	// process takes control back anyway.
	reapWait = 5 * time.Second
)

// inherited are the listeners and ready pipe a successor got from its
// predecessor (zero when this process was started normally).
type inherited struct {
	client, admin net.Listener
	ready         *os.File
}

// inheritListeners reads the handover environment, if any.
func inheritListeners() (inherited, error) {
	var in inherited
	spec := os.Getenv(envInherit)
	if spec == "" {
		return in, nil
	}
	os.Unsetenv(envInherit) // not for our own successors
	for _, kv := range strings.Split(spec, ",") {
		name, fdStr, _ := strings.Cut(kv, "=")
		var fd int
		if _, err := fmt.Sscanf(fdStr, "%d", &fd); err != nil {
			return in, fmt.Errorf("%s: bad descriptor %q", envInherit, kv)
		}
		f := os.NewFile(uintptr(fd), name)
		if name == "ready" {
			in.ready = f
			continue
		}
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return in, fmt.Errorf("inherit %s listener: %w", name, err)
		}
		switch name {
		case "client":
			in.client = ln
		case "admin":
			in.admin = ln
		}
	}
	return in, nil
}

// reportReady tells the predecessor this process serves.
func (in inherited) reportReady() {
	if in.ready != nil {
		fmt.Fprintln(in.ready, readyLine)
		in.ready.Close()
	}
}

// handover starts a successor process on this node's listening sockets and
// reports whether it took over. On failure the node has its control plane
// back and keeps serving.
func handover(node *cellgate.Node, log *slog.Logger) bool {
	child, err := startSuccessor(node, log)
	if err == nil {
		log.Info("handover complete; draining", "successor", child)
		return true
	}
	log.Error("handover failed; keeping control", "err", err)
	if err := node.ReacquireControl(); err != nil {
		log.Error("could not take the control plane back", "err", err)
	}
	return false
}

// startSuccessor runs the same binary with the same arguments on inherited
// sockets and waits for it to report ready.
func startSuccessor(node *cellgate.Node, log *slog.Logger) (int, error) {
	client, admin, err := node.ListenerFiles()
	if err != nil {
		return 0, err
	}
	defer client.Close()
	if admin != nil {
		defer admin.Close()
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer readyR.Close()
	exe, err := os.Executable()
	if err != nil {
		readyW.Close()
		return 0, err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{client, readyW}
	spec := "client=3,ready=4"
	if admin != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, admin)
		spec += ",admin=5"
	}
	cmd.Env = append(os.Environ(), envInherit+"="+spec)
	if err := node.ReleaseControl(); err != nil {
		log.Warn("release control plane", "err", err)
	}
	if err := cmd.Start(); err != nil {
		readyW.Close()
		return 0, fmt.Errorf("start successor: %w", err)
	}
	readyW.Close() // the child holds its copy
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	got := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(readyR).ReadString('\n')
		got <- strings.TrimSpace(line) == readyLine
	}()
	// Nothing ticks the controller until the successor is ready, so it
	// gets a few ticks (cellgate.HandoverReadyWait), not more.
	limit := node.HandoverReadyWait()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case ok := <-got:
		if ok {
			return cmd.Process.Pid, nil
		}
		reap(cmd, exited, log)
		return 0, errors.New("successor exited before it was ready")
	case err := <-exited:
		return 0, fmt.Errorf("successor exited: %v", err)
	case <-timer.C:
		reap(cmd, exited, log)
		return 0, fmt.Errorf("successor not ready within %v (killed)", limit)
	}
}

// reap kills a successor that will not take over and waits (up to
// reapWait) for it to exit, so that its hold on the journal lock, the
// shared sockets' accept queue and the cluster name is gone before this
// process takes control back.
func reap(cmd *exec.Cmd, exited <-chan error, log *slog.Logger) {
	cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(reapWait):
		log.Warn("killed successor has not exited", "pid", cmd.Process.Pid, "waited", reapWait)
	}
}
