// Package accesslog writes one JSON object per proxied request, off the
// request path.
//
// The request path never formats, hashes or writes: it takes a free Entry
// from a fixed pool (a buffered channel, so taking one is a non-blocking
// receive), copies the few request fields it owns into the Entry's own
// buffers, and hands it to the writer goroutine. When every Entry is in
// flight — the writer is slow or its file blocks — the request's line is
// dropped and counted (cellgate_access_log_dropped_total); a request never
// waits for the log. The writer formats the JSON, replaces the sticky key
// by a keyed hash (HMAC-SHA256 with the node's secret: a plain hash of an
// IP address or a user id is reversed by hashing every candidate), batches
// lines and writes them to stdout, stderr or a file that Reopen (SIGUSR1)
// opens anew after logrotate moved it.
//
// Entries are recycled, so nothing is allocated per request once the pool's
// buffers have grown to the longest host, path and ids seen.
package accesslog
