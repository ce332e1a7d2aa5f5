// Package ows trims HTTP's optional whitespace, OWS (RFC 9110 §5.6.3: any
// run of SP and HTAB), from header field values and list elements. The
// proxy's request path, its front door, its HTTP/2 upstream (Connection
// tokens) and the load generator's response parser all need it.
// bytes.Trim would build an ASCII set from its cutset on every call, which
// the proxy's CPU profile showed as ~2 % of its user time (bench README,
// "CPU profile"), so this loops over the two bytes.
package ows

// Trim drops leading and trailing spaces and tabs. It returns a subslice
// of b and allocates nothing.
func Trim(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
