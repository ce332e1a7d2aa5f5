// Command pgoprofile writes the CPU profile that cmd/cellgate is built with
// (cmd/cellgate/default.pgo, picked up by go build's default -pgo=auto).
//
// It builds cellgate without a profile, serves one cell in front of an
// in-process fasthttp upstream (GET → 128-byte body, the shared bench
// upstream's answer) with the default config and GOMAXPROCS=1 — the peer
// comparison's setup (bench/README.md) — drives it with cellgate's own
// closed-loop load generator, and keeps the serving process's profile.
// Run it through `make pgo` after changes to the request path; the profile
// is a few kilobytes and is committed.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cellgate/cellgate/bench"
	"github.com/valyala/fasthttp"
)

func main() {
	out := flag.String("o", "cmd/cellgate/default.pgo", "where to write the profile")
	dur := flag.Duration("duration", 20*time.Second, "measured load")
	conns := flag.Int("c", 64, "client connections")
	flag.Parse()
	if err := run(*out, *dur, *conns); err != nil {
		fmt.Fprintln(os.Stderr, "pgoprofile:", err)
		os.Exit(1)
	}
}

func run(out string, dur time.Duration, conns int) error {
	dir, err := os.MkdirTemp("", "pgoprofile")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "cellgate")
	build := exec.Command("go", "build", "-pgo=off", "-o", bin, "./cmd/cellgate")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}

	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	body := make([]byte, 128)
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }}
	go up.Serve(upLn)   //nolint:errcheck
	defer up.Shutdown() //nolint:errcheck

	addr, err := freeAddr()
	if err != nil {
		return err
	}
	cfg := filepath.Join(dir, "pgo.toml")
	toml := fmt.Sprintf(`node_name = "pgo"
[admin]
addr = ""
[listen]
addr = %q
[state]
path = %q
[[cell]]
name = "direct"
version = "v1"
weight = 100
endpoints = [%q]
`, addr, filepath.Join(dir, "journal.db"), upLn.Addr().String())
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		return err
	}
	prof := filepath.Join(dir, "cpu.pprof")
	serve := exec.Command(bin, "serve", "-config", cfg, "-cpuprofile", prof)
	serve.Env = append(os.Environ(), "GOMAXPROCS=1")
	serve.Stderr = os.Stderr
	if err := serve.Start(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer serve.Process.Kill() //nolint:errcheck

	url := "http://" + addr + "/"
	if err := awaitServing(url, 30*time.Second); err != nil {
		return err
	}
	res, err := bench.Run(context.Background(), bench.Config{
		URL: url, Connections: conns, Warmup: time.Second, Duration: dur, Timeout: 5 * time.Second,
	}, bench.Hooks{})
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if res.Errors > 0 || res.Requests == 0 {
		return fmt.Errorf("load: %d requests, %d errors", res.Requests, res.Errors)
	}
	fmt.Fprintf(os.Stderr, "pgoprofile: %d requests (%.0f req/s) through %s\n", res.Requests, res.RPS, addr)

	if err := serve.Process.Signal(syscall.SIGINT); err != nil {
		return err
	}
	if err := serve.Wait(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	data, err := os.ReadFile(prof)
	if err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// awaitServing polls url until it answers 200.
func awaitServing(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		sc, _, err := fasthttp.Get(nil, url)
		if err == nil && sc == 200 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not serving after %v: %v (status %d)", url, within, err, sc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
