package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// msgType says what a frame carries. The values are part of the wire format:
// never renumber them, only add.
type msgType byte

const (
	// msgDocument is one replicated document (e.g. a rollout), by UDP
	// broadcast or, when too large for a packet, by SendReliable.
	msgDocument msgType = 1
	// msgSLI is one node's per-tick SLI payload, always by SendReliable.
	msgSLI msgType = 2
	// msgState is a node's full state, exchanged by TCP push/pull.
	msgState msgType = 3
	// msgLeave announces a graceful leave just before memberlist's own leave
	// broadcast, because memberlist's EventDelegate cannot tell a node that
	// left from one that failed (Node.State is not filled in), and only the
	// latter must keep counting in the last known membership.
	msgLeave msgType = 4
	// msgHealth is one node's view of its cells' health (which endpoints
	// it has in rotation), always by SendReliable. It is not replicated
	// state: each node decides from its own evidence and speaks only for
	// itself; peers keep the newest view per sender for status.
	msgHealth msgType = 5
	// msgLast is the highest type this version knows.
	msgLast = msgHealth
)

// wireVersion is the first byte of every frame, so a future format can be
// told apart (and refused) instead of being misread.
const wireVersion byte = 1

// maxNameLen bounds keys and node names on the wire; anything longer is
// garbage or an attack, and refusing it keeps the decoder's allocations
// bounded.
const maxNameLen = 512

// Decode errors. ErrMalformed wraps every specific reason.
var ErrMalformed = errors.New("gossip: malformed message")

// message is one decoded frame. Payload aliases the decoded buffer.
type message struct {
	Type    msgType
	Key     string
	From    string
	Payload []byte
}

// encodeMessage frames m as:
//
//	version(1) | type(1) | uvarint len(key) | key | uvarint len(from) | from | payload
//
// The payload runs to the end of the frame, so no length is needed for it;
// memberlist delivers whole messages.
func encodeMessage(m message) []byte {
	buf := make([]byte, 0, 2+2*binary.MaxVarintLen16+len(m.Key)+len(m.From)+len(m.Payload))
	buf = append(buf, wireVersion, byte(m.Type))
	buf = binary.AppendUvarint(buf, uint64(len(m.Key)))
	buf = append(buf, m.Key...)
	buf = binary.AppendUvarint(buf, uint64(len(m.From)))
	buf = append(buf, m.From...)
	return append(buf, m.Payload...)
}

// decodeMessage parses a frame from an untrusted peer. It never panics: every
// length is checked against the bytes present and against maxNameLen.
func decodeMessage(b []byte) (message, error) {
	var m message
	if len(b) < 2 {
		return m, fmt.Errorf("%w: %d bytes, need at least 2", ErrMalformed, len(b))
	}
	if b[0] != wireVersion {
		return m, fmt.Errorf("%w: wire version %d, want %d", ErrMalformed, b[0], wireVersion)
	}
	m.Type = msgType(b[1])
	if m.Type < msgDocument || m.Type > msgLast {
		return m, fmt.Errorf("%w: unknown type %d", ErrMalformed, b[1])
	}
	rest := b[2:]
	var err error
	if m.Key, rest, err = readString(rest, "key"); err != nil {
		return m, err
	}
	if m.From, rest, err = readString(rest, "from"); err != nil {
		return m, err
	}
	m.Payload = rest
	return m, nil
}

// readString reads one uvarint-length-prefixed string.
func readString(b []byte, what string) (string, []byte, error) {
	n, used := binary.Uvarint(b)
	if used <= 0 {
		return "", nil, fmt.Errorf("%w: bad %s length", ErrMalformed, what)
	}
	b = b[used:]
	if n > maxNameLen || n > uint64(len(b)) {
		return "", nil, fmt.Errorf("%w: %s length %d (have %d bytes, max %d)", ErrMalformed, what, n, len(b), maxNameLen)
	}
	return string(b[:n]), b[n:], nil
}
