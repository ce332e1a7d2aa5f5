package proxy

// Trimming for header lines on the request path. bytes.Trim and
// bytes.TrimRight build an ASCII set from their cutset string on every call,
// which the CPU profile showed as ~2 % of the proxy's user time (bench
// README, "CPU profile"); these loop over the two or four bytes they need.

// trimCRLF drops trailing CR and LF bytes.
func trimCRLF(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// trimOWS drops leading and trailing spaces and tabs (RFC 9110 §5.6.3 OWS).
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
