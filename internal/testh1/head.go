// Package testh1 reads raw HTTP/1.1 from a connection in tests that speak
// the protocol by hand (a recording or misbehaving peer, a client that
// checks the exact bytes it got), so that each does not carry its own copy
// of the read loop.
//
// Only tests import it (TestOnlyTestsImport checks, for every
// internal/test* package).
package testh1

import (
	"bufio"
	"strings"
)

// ReadHead reads one message head from br, up to and including the empty
// line that ends it (RFC 9112 §2.1), and returns it verbatim. On an error
// it returns what it read before the error with it (a partial last line
// included), so a test can show how far the peer got. It reads no body.
func ReadHead(br *bufio.Reader) (string, error) {
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		head.WriteString(line)
		if err != nil {
			return head.String(), err
		}
		if line == "\r\n" {
			return head.String(), nil
		}
	}
}
