package bench

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// afterResponse follows every test response, to check that the parser
// stops exactly at the end of the response.
const afterResponse = "NEXT"

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		headOnly bool
		status   int
		cell     string
		cgErr    string
		close    bool
		err      error // nil, errMalformed, errConnClosed, io.ErrUnexpectedEOF, …
		noRest   bool  // the body runs to the end of the stream
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Cellgate-Cell: a\r\n\r\nabc", status: 200, cell: "a"},
		{name: "bare LF and case", in: "HTTP/1.1 404 Not Found\ncontent-length:0\nx-cellgate-cell:  b \n\n", status: 404, cell: "b"},
		{name: "no reason", in: "HTTP/1.1 204\r\n\r\n", status: 204},
		{name: "cellgate error", in: "HTTP/1.1 504 Gateway Timeout\r\nX-Cellgate-Error: upstream_timeout\r\nContent-Length: 0\r\n\r\n", status: 504, cgErr: "upstream_timeout"},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nA;ext=1\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n", status: 200},
		{name: "chunked wins over length", in: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", status: 200},
		{name: "connection close", in: "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\nx", status: 200, close: true},
		{name: "http/1.0 closes", in: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", status: 200, close: true},
		{name: "http/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", status: 200},
		{name: "until close", in: "HTTP/1.1 200 OK\r\n\r\nbody", status: 200, close: true, noRest: true},
		{name: "other coding until close", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nbody", status: 200, close: true, noRest: true},
		{name: "head ignores length", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", headOnly: true, status: 200},
		{name: "304 has no body", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", status: 304},
		{name: "interim then final", in: "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nX-Cellgate-Cell: c\r\nContent-Length: 0\r\n\r\n", status: 200, cell: "c"},
		{name: "obs-fold skipped", in: "HTTP/1.1 200 OK\r\nX-Other: a\r\n  b\r\nContent-Length: 0\r\n\r\n", status: 200},
		{name: "same length twice", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", status: 200},

		{name: "empty stream", in: "", err: errConnClosed, noRest: true},
		{name: "eof in status line", in: "HTTP/1.1 20", err: io.ErrUnexpectedEOF, noRest: true},
		{name: "eof in header", in: "HTTP/1.1 200 OK\r\nContent-Len", err: io.ErrUnexpectedEOF, noRest: true},
		{name: "eof in body", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", err: io.ErrUnexpectedEOF, noRest: true},
		{name: "eof in chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", err: io.ErrUnexpectedEOF, noRest: true},
		{name: "not http", in: "SSH-2.0-OpenSSH\r\n\r\n", err: errMalformed},
		{name: "http/2 status", in: "HTTP/2.0 200 OK\r\n\r\n", err: errMalformed},
		{name: "bad status digits", in: "HTTP/1.1 2x0 OK\r\n\r\n", err: errMalformed},
		{name: "status below 100", in: "HTTP/1.1 099 X\r\n\r\n", err: errMalformed},
		{name: "no space after status", in: "HTTP/1.1 200OK\r\n\r\n", err: errMalformed},
		{name: "space before colon", in: "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx", err: errMalformed},
		{name: "no colon", in: "HTTP/1.1 200 OK\r\nbogus\r\n\r\n", err: errMalformed},
		{name: "empty name", in: "HTTP/1.1 200 OK\r\n: x\r\n\r\n", err: errMalformed},
		{name: "negative length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: errMalformed},
		{name: "huge length", in: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", err: errMalformed},
		{name: "conflicting lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", err: errMalformed},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", err: errMalformed},
		{name: "huge chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", err: errMalformed},
		{name: "chunk without CRLF", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n", err: errMalformed},
		{name: "upgrade", in: "HTTP/1.1 101 Switching Protocols\r\n\r\n", err: errMalformed},
		{name: "endless interim", in: strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", maxInterim+2), err: errMalformed},
		{name: "too many headers", in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("A: b\r\n", maxHeaderLines+1) + "\r\n", err: errMalformed},
		{name: "line too long", in: "HTTP/1.1 200 OK\r\nA: " + strings.Repeat("b", 5000) + "\r\n\r\n", err: errMalformed},
	}
	for _, tt := range tests {
		for _, split := range []bool{false, true} {
			name := tt.name
			if split {
				name += "/one byte reads"
			}
			t.Run(name, func(t *testing.T) {
				var src io.Reader = strings.NewReader(tt.in + afterResponse)
				if tt.noRest {
					src = strings.NewReader(tt.in)
				}
				if split {
					src = iotest.OneByteReader(src)
				}
				br := bufio.NewReaderSize(src, 4096)
				resp := h1Response{cell: []byte("stale"), cgErr: []byte("stale")}
				_, err := readResponse(br, &resp, tt.headOnly)
				if tt.err != nil {
					if !errors.Is(err, tt.err) {
						t.Fatalf("err = %v, want %v", err, tt.err)
					}
					return
				}
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if resp.status != tt.status || string(resp.cell) != tt.cell || string(resp.cgErr) != tt.cgErr || resp.close != tt.close {
					t.Errorf("got status %d cell %q error %q close %v, want %d %q %q %v",
						resp.status, resp.cell, resp.cgErr, resp.close, tt.status, tt.cell, tt.cgErr, tt.close)
				}
				rest, _ := io.ReadAll(br)
				if want := afterResponse; !tt.noRest && string(rest) != want {
					t.Errorf("left %q after the response, want %q", rest, want)
				}
			})
		}
	}
}

// TestReadResponseStarted: only a stream that ends before any byte counts
// as a connection closed before the response.
func TestReadResponseStarted(t *testing.T) {
	for _, tt := range []struct {
		in      string
		started bool
	}{{"", false}, {"H", true}, {"HTTP/1.1 200 OK\r\n", true}} {
		var resp h1Response
		started, err := readResponse(bufio.NewReader(strings.NewReader(tt.in)), &resp, false)
		if err == nil || started != tt.started {
			t.Errorf("%q: started %v err %v, want started %v and an error", tt.in, started, err, tt.started)
		}
	}
}

func TestReadResponseDoesNotAllocate(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nX-Cellgate-Cell: cell-a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	sr := strings.NewReader(in)
	br := bufio.NewReader(sr)
	resp := h1Response{cell: make([]byte, 0, 16)}
	allocs := testing.AllocsPerRun(100, func() {
		sr.Reset(in)
		br.Reset(sr)
		if _, err := readResponse(br, &resp, false); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per response, want 0", allocs)
	}
}

// FuzzReadResponse: any bytes give a response or an error, never a panic,
// and a response has a final status.
func FuzzReadResponse(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Cellgate-Cell: a\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n",
		"HTTP/1.0 503 X\r\nConnection: close\r\nX-Cellgate-Error: e\r\n\r\nbody",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	} {
		f.Add([]byte(seed), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, headOnly bool) {
		br := bufio.NewReaderSize(iotest.HalfReader(strings.NewReader(string(data))), 64)
		var resp h1Response
		started, err := readResponse(br, &resp, headOnly)
		if err != nil {
			return
		}
		if !started || resp.status < 200 || resp.status > 999 {
			t.Errorf("accepted %q: started %v status %d", data, started, resp.status)
		}
	})
}
