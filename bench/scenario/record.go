package scenario

import (
	"strconv"
	"time"

	"github.com/cellgate/cellgate/bench"
)

// noCell marks a response without a known X-Cellgate-Cell (a transport
// error, or a proxy error before routing).
const noCell = -1

// obs is one response, compacted for the analysis after the run. Times are
// nanoseconds since the scenario's start on the monotonic clock. The
// request was routed by the node at some moment in [lo, hi]: lo is its
// intended send time (the generator's corrected latency starts there), hi
// is when its response was seen.
type obs struct {
	lo, hi int64
	key    int32 // key number; -1 without a parsable key
	cell   int8  // index into the scenario's cells, or noCell
	failed bool
}

// recorder keeps every response, one slice per generator connection: the
// bench calls OnResponse for a connection only from that connection's
// goroutine, so the slices need no lock. They are read after bench.Run
// returned, which happens after the last hook call.
type recorder struct {
	base   time.Time
	prefix string
	cells  []string
	byConn [][]obs
}

func newRecorder(base time.Time, conns int, prefix string, cells []string) *recorder {
	return &recorder{base: base, prefix: prefix, cells: cells, byConn: make([][]obs, conns)}
}

// observe is the bench OnResponse hook. It copies nothing from the
// observation's reused slices: the key is parsed to its number and the
// cell to its index.
func (r *recorder) observe(ob bench.Observation) {
	hi := int64(time.Since(r.base))
	o := obs{lo: hi - int64(ob.Latency), hi: hi, key: r.keyNumber(ob.Key), cell: r.cellIndex(ob.Cell), failed: ob.Failed}
	r.byConn[ob.Worker] = append(r.byConn[ob.Worker], o)
}

// keyNumber parses "user-17" to 17.
func (r *recorder) keyNumber(k []byte) int32 {
	if len(k) <= len(r.prefix) || string(k[:len(r.prefix)]) != r.prefix {
		return -1
	}
	n, err := strconv.ParseInt(string(k[len(r.prefix):]), 10, 32)
	if err != nil {
		return -1
	}
	return int32(n)
}

func (r *recorder) cellIndex(c []byte) int8 {
	for i, name := range r.cells {
		if string(c) == name {
			return int8(i)
		}
	}
	return noCell
}

// all returns every observation, in no particular order.
func (r *recorder) all() []obs {
	n := 0
	for _, s := range r.byConn {
		n += len(s)
	}
	out := make([]obs, 0, n)
	for _, s := range r.byConn {
		out = append(out, s...)
	}
	return out
}
