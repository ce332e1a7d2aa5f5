package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// BenchmarkUpload measures one streamed upload end to end over loopback
// TCP, behind the front door: a client writes a POST with a Content-Length
// body, the proxy streams it to an upstream that discards it and answers
// 204. MB/s is the body rate; allocs/op are the whole process's.
func BenchmarkUpload(b *testing.B) {
	for _, size := range []int{1 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			up := startSink(b)
			p, err := New(testOptions(), 42, []CellSpec{{Name: "a", Weight: 1, Endpoints: []string{up}}}, Hooks{})
			if err != nil {
				b.Fatal(err)
			}
			addr := serveProxy(b, p, nil)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			head := "POST /upload HTTP/1.1\r\nHost: app.example\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n"
			body := make([]byte, size)
			br := bufio.NewReader(c)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu0 := processCPU(b)
			b.ResetTimer()
			for b.Loop() {
				if _, err := io.WriteString(c, head); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(body); err != nil {
					b.Fatal(err)
				}
				if err := readStatus(br, "HTTP/1.1 204"); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			// CPU per GB (client, proxy and sink together: the client's and
			// the sink's shares are the same whatever the proxy does) is
			// steadier than MB/s on a loaded machine.
			gb := float64(b.N) * float64(size) / 1e9
			b.ReportMetric(float64(processCPU(b)-cpu0)/1e6/gb, "cpu-ms/GB")
		})
	}
}

// processCPU is the process's user and system CPU time so far, in ns.
func processCPU(t testing.TB) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// startSink runs an upstream that reads Content-Length request bodies,
// drops them and answers 204, on keep-alive connections.
func startSink(t testing.TB) string {
	t.Helper()
	return serveRaw(t, sink)
}

func sink(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		n := int64(0)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
			if k, v, ok := strings.Cut(string(line), ":"); ok && strings.EqualFold(k, "Content-Length") {
				n, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		if _, err := io.CopyN(io.Discard, br, n); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n"); err != nil {
			return
		}
	}
}

// readStatus reads one bodiless response and checks its status line.
func readStatus(br *bufio.Reader, want string) error {
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, want) {
		return fmt.Errorf("status %q, want %q", line, want)
	}
	for {
		l, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(l) <= 2 {
			return nil
		}
	}
}
