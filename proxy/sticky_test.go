package proxy

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/cellgate/cellgate/balancer"
	"github.com/valyala/fasthttp"
)

func mustSources(t testing.TB, specs ...string) []balancer.Source {
	t.Helper()
	out := make([]balancer.Source, len(specs))
	for i, s := range specs {
		src, err := balancer.ParseSource(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = src
	}
	return out
}

// parseRequest parses raw as the server would, or reports false.
func parseRequest(raw string) (*fasthttp.Request, bool) {
	req := &fasthttp.Request{}
	req.Header.DisableNormalizing()
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		return nil, false
	}
	return req, true
}

func TestStickyKeyExtract(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	ks := newKeySources(mustSources(t, "header:X-User-ID", "cookie:session", "query:uid", "ip"), trusted)
	peer := netip.MustParseAddr("192.0.2.7")
	proxyPeer := netip.MustParseAddr("10.1.2.3")
	for _, tc := range []struct {
		name    string
		headers string
		uri     string
		peer    netip.Addr
		key     string
		src     int
	}{
		{"header wins", "X-User-ID: u1\r\nCookie: session=s1\r\n", "/?uid=q1", peer, "u1", 0},
		{"header name case-insensitive", "x-user-id: u2\r\n", "/", peer, "u2", 0},
		{"empty header skipped", "X-User-ID: \r\nCookie: a=b; session=s1\r\n", "/", peer, "s1", 1},
		{"query", "", "/p?a=1&uid=q1#frag", peer, "q1", 2},
		{"empty query value skipped", "", "/p?uid=&x=1", peer, "192.0.2.7", 3},
		{"peer ip", "", "/", peer, "192.0.2.7", 3},
		{"xff ignored from untrusted peer", "X-Forwarded-For: 203.0.113.9\r\n", "/", peer, "192.0.2.7", 3},
		{"xff from trusted peer", "X-Forwarded-For: 203.0.113.9, 10.9.9.9\r\n", "/", proxyPeer, "203.0.113.9", 3},
		{"xff garbage falls back to peer", "X-Forwarded-For: nonsense\r\n", "/", proxyPeer, "10.1.2.3", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, ok := parseRequest("GET " + tc.uri + " HTTP/1.1\r\nHost: x\r\n" + tc.headers + "\r\n")
			if !ok {
				t.Fatal("request did not parse")
			}
			key, src, _ := ks.extract(req, tc.peer, nil, nil)
			if string(key) != tc.key || src != tc.src {
				t.Fatalf("got (%q, %d), want (%q, %d)", key, src, tc.key, tc.src)
			}
			// The peer's text as route hands it over (appendPeer) reads alike.
			key, src, _ = ks.extract(req, tc.peer, appendPeer(nil, tc.peer), nil)
			if string(key) != tc.key || src != tc.src {
				t.Fatalf("with the peer's text: got (%q, %d), want (%q, %d)", key, src, tc.key, tc.src)
			}
		})
	}
}

// FuzzStickyKey feeds arbitrary header, cookie, query and X-Forwarded-For
// bytes through the server's parser and extract: it must not panic, and the
// source it reports must be the first one present.
func FuzzStickyKey(f *testing.F) {
	f.Add("u1", "session=s1", "uid=q1", "203.0.113.9", true)
	f.Add("", "a=b;session=", "uid=&uid=2", "10.0.0.1, ::1", true)
	f.Add("\x00", "session", "%zz=1&&=", ",,,", false)
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	srcs := []balancer.Source{
		{Kind: balancer.SourceHeader, Name: "X-User-ID"},
		{Kind: balancer.SourceCookie, Name: "session"},
		{Kind: balancer.SourceQuery, Name: "uid"},
		{Kind: balancer.SourceIP},
	}
	ks := newKeySources(srcs, trusted)
	f.Fuzz(func(t *testing.T, hdr, cookie, query, xff string, fromProxy bool) {
		raw := "GET /p?" + query + " HTTP/1.1\r\nHost: x\r\nX-User-ID: " + hdr +
			"\r\nCookie: " + cookie + "\r\nX-Forwarded-For: " + xff + "\r\n\r\n"
		req, ok := parseRequest(raw)
		if !ok {
			return
		}
		peer := netip.MustParseAddr("192.0.2.1")
		if fromProxy {
			peer = netip.MustParseAddr("127.0.0.1")
		}
		key, src, _ := ks.extract(req, peer, nil, nil)
		present := []bool{
			headerPresent(req, "X-User-ID"),
			len(req.Header.Cookie("session")) > 0,
			rawQueryPresent(string(req.Header.RequestURI()), "uid"),
			true,
		}
		want := -1
		for i, p := range present {
			if p {
				want = i
				break
			}
		}
		if src != want || len(key) == 0 {
			t.Fatalf("source %d key %q, want source %d (present %v) for %q", src, key, want, present, raw)
		}
	})
}

func headerPresent(req *fasthttp.Request, name string) bool {
	for k, v := range req.Header.All() {
		if strings.EqualFold(string(k), name) && len(v) > 0 {
			return true
		}
	}
	return false
}

// rawQueryPresent is an independent reading of "query parameter present".
func rawQueryPresent(uri, name string) bool {
	_, q, ok := strings.Cut(uri, "?")
	if !ok {
		return false
	}
	q, _, _ = strings.Cut(q, "#")
	for _, pair := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if k == name && v != "" {
			return true
		}
	}
	return false
}

func TestQueryParam(t *testing.T) {
	for _, tc := range []struct{ uri, want string }{
		{"/", ""}, {"/?uid=1", "1"}, {"/?a&uid=2&uid=3", "2"}, {"/?uid", ""}, {"/?x=1#uid=4", ""}, {"/?uid=a%20b", "a%20b"},
	} {
		if got := queryParam([]byte(tc.uri), []byte("uid")); !bytes.Equal(got, []byte(tc.want)) && !(got == nil && tc.want == "") {
			t.Errorf("%s: %q, want %q", tc.uri, got, tc.want)
		}
	}
}

// TestEqualFold: equalFold answers as bytes.EqualFold on slices of one
// length, ASCII or not (a rune's bytes differing past its first, a
// folding that changes the byte length, invalid UTF-8).
func TestEqualFold(t *testing.T) {
	for _, c := range [][2]string{
		{"Host", "host"}, {"HOST", "hosT"}, {"Host", "Hosu"}, {"^", "~"}, {"@", "`"}, {"[", "{"},
		{"é", "É"}, {"é", "ê"}, {"xé", "Xê"}, {"\u212Ak", "k\u212A"}, {"\u212A", "kkk"}, {"\xff", "\xfe"}, {"\xc3", "\xe3"},
		{"", ""}, {"a", "ab"},
	} {
		a, b := []byte(c[0]), []byte(c[1])
		if got, want := equalFold(a, b), len(a) == len(b) && bytes.EqualFold(a, b); got != want {
			t.Errorf("equalFold(%q, %q) = %v, want %v", a, b, got, want)
		}
	}
}
