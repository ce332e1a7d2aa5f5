package testh1

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

// TestReadHead: the head comes back whole, its empty line included, and
// the body stays in the reader; a head cut short returns what came, with
// the error.
func TestReadHead(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(head + "ok" + "GET / HTTP/1.1\r\n"))
	got, err := ReadHead(br)
	if err != nil || got != head {
		t.Fatalf("ReadHead = %q, %v; want %q", got, err, head)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "okGET / HTTP/1.1\r\n" {
		t.Fatalf("left in the reader: %q", rest)
	}

	const cut = "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B"
	got, err = ReadHead(bufio.NewReader(strings.NewReader(cut)))
	if err != io.EOF || got != cut {
		t.Fatalf("cut head: ReadHead = %q, %v; want %q, EOF", got, err, cut)
	}
}
