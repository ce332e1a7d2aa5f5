package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the cellgate binary the process tests run, built once.
var binary struct {
	once sync.Once
	path string
	err  error
}

// buildBinary builds ./ once per test run into a directory removed by
// TestMain.
func buildBinary(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "cellgate-bin-")
		if err != nil {
			binary.err = err
			return
		}
		binDir = dir
		binary.path = filepath.Join(dir, "cellgate")
		// -pgo=off: the tests check behaviour, which the profile does not
		// change, and default.pgo would compile every dependency once
		// more (with the profile) on a cold build cache: 82 s of CPU on
		// CI's two cores, measured.
		if out, err := exec.Command("go", "build", "-pgo=off", "-o", binary.path, ".").CombinedOutput(); err != nil {
			binary.err = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

var binDir string // removed by TestMain

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// served is a `cellgate serve` process under test.
type served struct {
	cmd         *exec.Cmd
	logs        *logWatch
	addr, admin string
	exited      chan struct{} // closed once cmd.Wait returned
	waitErr     error
}

// startServe runs `cellgate serve -config cfg` and waits for its serving
// line. The process is killed at the end of the test if still running.
func startServe(t *testing.T, bin, cfg string) *served {
	t.Helper()
	p := launch(t, bin, cfg)
	line, err := bufio.NewReader(p.stdout).ReadString('\n')
	m := regexp.MustCompile(`serving on (\S+) \(admin (\S*)\)`).FindStringSubmatch(line)
	if m == nil {
		p.cmd.Process.Kill()
		<-p.exited
		t.Fatalf("no serving line (%q, %v):\n%s", line, err, p.logs.text())
	}
	p.addr, p.admin = m[1], m[2]
	go io.Copy(io.Discard, p.stdout)
	return p.served
}

type launched struct {
	*served
	stdout io.Reader
}

// launch starts the process without waiting for anything.
func launch(t *testing.T, bin, cfg string) launched {
	t.Helper()
	// Plain pipes, not StdoutPipe: Wait would close those when the first
	// process exits, while its successors keep writing to them.
	cmd := exec.Command(bin, "serve", "-config", cfg)
	stdout, outW, _ := os.Pipe()
	stderr, errW, _ := os.Pipe()
	cmd.Stdout, cmd.Stderr = outW, errW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	errW.Close()
	p := &served{cmd: cmd, logs: newLogWatch(stderr), exited: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	return launched{served: p, stdout: stdout}
}

// wait waits up to limit for the process to exit and returns its exit
// code (-1: still running at the limit) and how long it took.
func (p *served) wait(limit time.Duration) (int, time.Duration) {
	start := time.Now()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode(), time.Since(start)
	case <-time.After(limit):
		return -1, time.Since(start)
	}
}

// term sends SIGTERM and waits up to limit for the exit.
func (p *served) term(t *testing.T, limit time.Duration) (int, time.Duration) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(limit)
}

// socketFlags returns the file status flags (/proc/PID/fdinfo "flags",
// octal) of the descriptor of process pid that is the TCP socket
// listening on addr.
func socketFlags(t *testing.T, pid int, addr string) uint64 {
	t.Helper()
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	inode := listeningInode(t, pid, port)
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if link != "socket:["+inode+"]" {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(l, "flags:"); ok {
				flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
				if err != nil {
					t.Fatal(err)
				}
				return flags
			}
		}
	}
	t.Fatalf("process %d holds no descriptor for the socket listening on %s", pid, addr)
	return 0
}

// listeningInode finds the inode of the TCP socket listening on port in
// /proc/PID/net/tcp (state 0A is LISTEN).
func listeningInode(t *testing.T, pid, port int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(":%04X", port)
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 9 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
			return f[9]
		}
	}
	t.Fatalf("no listening socket on port %d", port)
	return ""
}
