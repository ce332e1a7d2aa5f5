package bench

import (
	"math/rand/v2"
	"strconv"
)

// keyChooser picks the key of each request. Each sending goroutine owns one,
// so it needs no lock; next reuses one buffer and does not allocate.
type keyChooser struct {
	n      uint64
	rng    *rand.Rand
	zipf   *rand.Zipf // nil for uniform and seq
	seq    bool       // DistSeq: next is i, then i+stride, … (mod n)
	i      uint64     // DistSeq: the next key's number
	stride uint64     // DistSeq: the number of connections
	buf    []byte
	prefix int
}

// newKeyChooser returns a chooser for cfg's key space, seeded per worker so
// that workers send different but reproducible sequences. It returns nil
// when cfg sends no keys.
func newKeyChooser(cfg *Config, worker int) *keyChooser {
	if cfg.Keys <= 0 {
		return nil
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = 0x5eed
	}
	k := &keyChooser{
		n:      uint64(cfg.Keys),
		rng:    rand.New(rand.NewPCG(seed, uint64(worker)+1)),
		prefix: len(cfg.KeyPrefix),
	}
	k.buf = append(make([]byte, 0, len(cfg.KeyPrefix)+20), cfg.KeyPrefix...)
	switch cfg.KeyDist {
	case DistSeq:
		k.seq = true
		k.stride = uint64(max(cfg.Connections, 1))
		k.i = uint64(worker) % k.n
	case DistZipf:
		s := cfg.ZipfS
		if s == 0 {
			s = 1.1
		}
		k.zipf = rand.NewZipf(k.rng, s, 1, k.n-1)
	}
	return k
}

// next returns the next key. The slice is valid until the following call.
func (k *keyChooser) next() []byte {
	var i uint64
	if k.seq {
		i = k.i
		k.i = (k.i + k.stride) % k.n
	} else if k.zipf != nil {
		i = k.zipf.Uint64()
	} else {
		i = k.rng.Uint64N(k.n)
	}
	k.buf = strconv.AppendUint(k.buf[:k.prefix], i, 10)
	return k.buf
}
