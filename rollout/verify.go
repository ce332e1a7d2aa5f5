package rollout

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// ErrDamaged: the journal file is damaged; the node refuses to start on it.
// The error names what is wrong and the way out (cellgate journal check,
// export, compact; docs/CONTRACT.md "Journal recovery").
var ErrDamaged = errors.New("journal damaged")

// Verification happens before bbolt maps the file, because bbolt trusts
// its file: a journal cut short (truncate, a full disk during a copy) makes
// it read past the end of its mapping, which is a fatal fault, not a
// recoverable panic; a garbled meta page makes it fall back one
// transaction without a word, losing an acknowledged decision. So the two
// meta pages are read and checked here first (magic, version, checksum,
// and that the pages they name lie inside the file); then bbolt opens the
// file and its own consistency check (Tx.Check) walks every page.

// bbolt's on-disk meta page (go.etcd.io/bbolt/internal/common/meta.go):
// a 16-byte page header, then magic, version, page size, flags (uint32
// each), root bucket (root pgid, sequence), freelist pgid, high-water pgid,
// txid, and an FNV-64a checksum of everything before it, in host byte order.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16
	metaSumLen     = 56 // bytes of the meta before its checksum
	metaLen        = metaSumLen + 8
	noFreelist     = ^uint64(0)
)

// metaPage is one decoded meta page.
type metaPage struct {
	pageSize                   uint32
	root, freelist, pgid, txid uint64
}

// decodeMeta decodes and checks the meta at the start of page buf.
func decodeMeta(buf []byte) (metaPage, error) {
	if len(buf) < pageHeaderSize+metaLen {
		return metaPage{}, errors.New("short page")
	}
	m := buf[pageHeaderSize : pageHeaderSize+metaLen]
	le := binary.NativeEndian
	switch {
	case le.Uint32(m[0:]) != boltMagic:
		return metaPage{}, errors.New("bad magic number (not a bbolt file, or a garbled meta page)")
	case le.Uint32(m[4:]) != boltVersion:
		return metaPage{}, fmt.Errorf("bbolt format version %d, want %d", le.Uint32(m[4:]), boltVersion)
	}
	h := fnv.New64a()
	h.Write(m[:metaSumLen])
	if h.Sum64() != le.Uint64(m[metaSumLen:]) {
		return metaPage{}, errors.New("checksum mismatch (garbled meta page)")
	}
	return metaPage{pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]),
		pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, nil
}

// preflight checks the journal file's meta pages before bbolt maps it. A
// missing or empty file is fine (bbolt creates one).
func preflight(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		return nil
	}
	return checkMetas(f, st.Size())
}

// checkMetas reads both meta pages of a file of size bytes and reports the
// first problem: both must be valid (bbolt writes them alternately, each
// commit one), and each must name pages inside the file.
func checkMetas(r io.ReaderAt, size int64) error {
	first := make([]byte, 4096)
	n, _ := r.ReadAt(first, 0)
	m0, err0 := decodeMeta(first[:n])
	pageSize := int64(m0.pageSize)
	if err0 != nil {
		pageSize = int64(os.Getpagesize())
	}
	second := make([]byte, pageHeaderSize+metaLen)
	n, _ = r.ReadAt(second, pageSize)
	m1, err1 := decodeMeta(second[:n])
	switch {
	case err0 != nil && err1 != nil:
		return fmt.Errorf("%w: no valid meta page (page 0: %v; page 1: %v): not a cellgate journal, or its header is destroyed", ErrDamaged, err0, err1)
	case err0 != nil || err1 != nil:
		bad, good, berr := 0, m1, err0
		if err1 != nil {
			bad, good, berr = 1, m0, err1
		}
		return fmt.Errorf("%w: meta page %d is invalid (%v); bbolt would silently fall back to transaction %d of the other meta page and may lose the last acknowledged commit", ErrDamaged, bad, berr, good.txid)
	}
	for i, m := range []metaPage{m0, m1} {
		if m.pageSize != m0.pageSize {
			return fmt.Errorf("%w: meta pages disagree on the page size (%d, %d)", ErrDamaged, m0.pageSize, m1.pageSize)
		}
		if need := int64(m.pgid) * int64(m.pageSize); need > size {
			return fmt.Errorf("%w: file is %d bytes but transaction %d (meta page %d) needs %d: it was truncated", ErrDamaged, size, m.txid, i, need)
		}
		if m.root >= m.pgid || (m.freelist >= m.pgid && m.freelist != noFreelist) {
			return fmt.Errorf("%w: meta page %d names pages beyond its high-water mark %d (root %d, freelist %d)", ErrDamaged, i, m.pgid, m.root, m.freelist)
		}
	}
	return nil
}

// verify runs bbolt's consistency check over the whole file: every page
// reachable once, no page both free and in use, keys in order.
func verify(db *bolt.DB) error {
	var problems []string
	err := guard("consistency check", func() error {
		return db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				problems = append(problems, err.Error())
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		more := ""
		if len(problems) > 5 {
			more = fmt.Sprintf(" (and %d more)", len(problems)-5)
			problems = problems[:5]
		}
		return fmt.Errorf("%w: consistency check failed: %s%s", ErrDamaged, strings.Join(problems, "; "), more)
	}
	return nil
}

// guard runs fn, turning a panic (bbolt panics on pages it cannot make
// sense of) or a memory fault in the mapped file into an error wrapping
// ErrDamaged, so a damaged page fails one request or refuses the open
// instead of killing the process.
func guard(what string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrDamaged, what, r)
		}
	}()
	return fn()
}
