package frontdoor

import "bytes"

// Peek waits for the first n bytes the client sends (fewer if the client
// stops sending something that can still begin with prefix, or the read
// fails) and returns them without consuming them: the next Read validates
// and returns them as if Peek had not happened. It lets the proxy tell an
// HTTP/2 connection preface (RFC 9113 §3.4) from an HTTP/1.1 request on a
// plain listener before choosing the server; a preface connection is then
// switched with PassThrough. It must be called by the reading goroutine
// before the first Read.
func (c *Conn) Peek(prefix []byte) ([]byte, error) {
	buf := make([]byte, 0, len(prefix))
	for len(buf) < len(prefix) && bytes.HasPrefix(prefix, buf) {
		n, err := c.Conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			c.keep(buf, err)
			return buf, err
		}
	}
	c.keep(buf, nil)
	return buf, nil
}

// keep makes b the pending bytes and err the error that follows them.
func (c *Conn) keep(b []byte, err error) {
	c.pendBuf = append(c.pendBuf[:0], b...)
	c.pending = c.pendBuf
	c.readErr = err
}
