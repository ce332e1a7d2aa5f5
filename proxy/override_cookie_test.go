package proxy

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/flags"
	"github.com/cellgate/cellgate/internal/testwait"
)

// overrideSecret keys the override cookies of these tests (the pin secret).
const overrideSecret = "override-test-secret"

// mintOverride returns a cellgate_override value for key, valid for ttl
// (negative: already expired).
func mintOverride(t *testing.T, secret, key, dict string, ttl time.Duration) string {
	t.Helper()
	v, err := flags.NewOverrideCookie([]byte(secret)).Mint([]byte(key), dict, time.Now().Add(ttl).Unix())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOverrideCookie: from a peer that is not a trusted proxy, a valid,
// unexpired cellgate_override cookie bound to the request's sticky key
// steers the request as a trusted X-Cellgate-Override would (cell and
// variant, counted apart, in no cohort) and reaches the upstream as it
// came; an expired one, a forged one (one character changed), one minted
// for another key, one signed with another secret and one on a request
// without a key are ignored: the request is served and recorded as usual.
func TestOverrideCookie(t *testing.T) {
	good := mintOverride(t, overrideSecret, "u1", "cell=canary, new-ranker=on", time.Hour)
	forged := []byte(good)
	forged[len(forged)/3] ^= 'A' ^ 'B' // still base64url, one byte of the payload changed
	if forged[len(forged)/3] == '.' {
		t.Fatal("flipped the separator")
	}
	for _, tc := range []struct {
		name, user, cookie string
		honoured           bool
	}{
		{"valid", "u1", good, true},
		{"expired", "u1", mintOverride(t, overrideSecret, "u1", "cell=canary, new-ranker=on", -time.Second), false},
		{"forged", "u1", string(forged), false},
		{"other key", "u2", good, false},
		{"other secret", "u1", mintOverride(t, "another-secret", "u1", "cell=canary, new-ranker=on", time.Hour), false},
		{"no key", "", good, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRecorder(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			e, rec := flagEngine(t, rankerOff)
			opts := testOptions()
			opts.StickyKey = []balancer.Source{{Kind: balancer.SourceHeader, Name: "X-User-ID"}}
			opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} // not loopback
			opts.PinSecret = []byte(overrideSecret)
			p, addr := startProxy(t, opts, []CellSpec{
				{Name: "a", Weight: 1, Endpoints: []string{r.addr}},
				{Name: "canary", Weight: 0, Endpoints: []string{r.addr}},
			}, Hooks{Flags: e})
			req := "GET / HTTP/1.1\r\nHost: h\r\n"
			if tc.user != "" {
				req += "X-User-ID: " + tc.user + "\r\n"
			}
			req += "Cookie: " + flags.OverrideCookieName + "=" + tc.cookie + "\r\nConnection: close\r\n\r\n"
			resp := rawExchange(t, addr, req, nil)
			head, _ := headOf(r.next(t))
			if !hasField(head, "Cookie: "+flags.OverrideCookieName+"="+tc.cookie) {
				t.Errorf("the cookie did not reach the upstream as it came:\n%s", head)
			}
			wantCell, wantFlags, wantOverrides := "a", "new-ranker=off", uint64(0)
			if tc.honoured {
				wantCell, wantFlags, wantOverrides = "canary", "new-ranker=on", 1
			}
			if !strings.Contains(resp, "HTTP/1.1 200 ") || !strings.Contains(resp, "X-Cellgate-Cell: "+wantCell+"\r\n") || !hasField(head, "X-Cellgate-Flags: "+wantFlags) {
				t.Errorf("want cell %s and %s; response:\n%s\nupstream head:\n%s", wantCell, wantFlags, resp, head)
			}
			if p.Overrides() != wantOverrides {
				t.Errorf("%d overridden requests counted, want %d", p.Overrides(), wantOverrides)
			}
			if tc.honoured {
				if n := rec.count("new-ranker=on") + rec.count("new-ranker=off"); n != 0 {
					t.Errorf("an overridden request was recorded in %d cohorts", n)
				}
			} else if tc.user != "" {
				testwait.For(t, 10*time.Second, "the request recorded", func() bool { return rec.count("new-ranker=off") == 1 })
			}
		})
	}
}
