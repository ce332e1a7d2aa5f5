// Package frontdoor is cellgate's strict HTTP/1.1 front door: a net.Listener
// wrapper that validates each client's request byte stream before the
// fasthttp server parses it.
//
// fasthttp's parser is lenient where RFC 9112 and RFC 9110 say MUST (chunk
// extensions, obs-fold, unknown versions, Host with userinfo, underscore
// framing names, a last chunk ending in a bare LF that hangs it). Leniency in
// one hop and strictness in the next is what request smuggling is made of, so
// the front door holds every request to one unambiguous reading and refuses
// anything else with its own short answer and a closed connection. README.md
// lists each rule with its RFC section.
//
// The validator is a state machine (request line → fields → body by
// Content-Length or chunked → next request) fed bytes split anywhere. It
// keeps only the unfinished line, never copies valid bytes on their way to
// the server and does not allocate per request. Use:
//
//	ln = frontdoor.Listen(ln, frontdoor.Config{})
//	server.Serve(ln)
//
// The fasthttp server behind it should have a ReadBufferSize of at least
// MaxRequestLine+MaxHeaderBytes, or it refuses long heads first, itself.
package frontdoor
