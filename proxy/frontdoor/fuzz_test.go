package frontdoor

import "testing"

// feedSplit feeds b to a fresh validator in pieces whose sizes come from
// cuts, one request at a time as Conn does, and returns the verdict.
func feedSplit(b, cuts []byte, cfg Config) (int, *Refusal, bool) {
	v := NewValidator(cfg)
	for k := 0; len(b) > 0; k++ {
		size := len(b)
		if len(cuts) > 0 {
			size = 1 + int(cuts[k%len(cuts)])%len(b)
		}
		piece := b[:size]
		for len(piece) > 0 {
			n, r := v.FeedMessage(piece)
			if n < 0 || n > len(piece) {
				panic("FeedMessage returned an out-of-range count")
			}
			if r != nil {
				return v.Requests(), r, false
			}
			piece = piece[n:]
		}
		b = b[size:]
	}
	return v.Requests(), nil, v.Idle()
}

// FuzzFrontDoor feeds arbitrary bytes, whole and split at arbitrary points:
// the validator must not panic, and the split must not change the verdict
// (which refusal, and how many requests passed before it).
func FuzzFrontDoor(f *testing.F) {
	for _, tc := range doorCases() {
		// Large seeds make the fuzzer's minimisation crawl; the small
		// config below reaches the limits with short inputs.
		if len(tc.raw) <= 1024 {
			f.Add([]byte(tc.raw), []byte{3, 17, 1})
		}
	}
	f.Add([]byte(chunked+"5;a=\"x\\\"y\"\r\nhello\r\n0\r\nX: y\r\n\r\n"), []byte{0})
	small := Config{MaxRequestLine: 64, MaxHeaderBytes: 128, MaxHeaderCount: 4}
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		for _, cfg := range []Config{{}, small} {
			whole := Validate(data, cfg)
			if whole.Accepted < 0 || whole.Accepted > len(data) {
				t.Fatalf("accepted %d of %d bytes", whole.Accepted, len(data))
			}
			reqs, r, idle := feedSplit(data, cuts, cfg)
			if r != whole.Refusal || reqs != whole.Requests {
				t.Fatalf("split verdict (%d requests, %v) differs from whole (%d requests, %v)",
					reqs, r, whole.Requests, whole.Refusal)
			}
			if r == nil && idle == whole.Partial {
				t.Fatalf("split idle=%v, whole partial=%v", idle, whole.Partial)
			}
		}
	})
}
