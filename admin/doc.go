// Package admin serves cellgate's admin HTTP API (JSON over net/http), the
// Prometheus /metrics endpoint and the embedded status page at /ui/.
//
// The package owns the outside shape only: routing, strict request
// decoding, body limits, bearer-token authentication and the error format
// ({"error": "...", "code": "..."}). Everything the API reads or changes
// lives behind the Backend interface, which the node implements; admin
// imports none of the packages that implement it.
//
// Authentication: reads are open; mutations (every non-GET route) need
// "Authorization: Bearer <token>" when a token file is configured. With no
// token configured, mutations are accepted only when the admin listener is
// bound to a loopback address; otherwise they are refused with 403, so an
// admin port exposed by mistake cannot change traffic. Browser requests
// from another origin are refused with 403 too (net/http's
// CrossOriginProtection), so a web page cannot drive a loopback admin port.
//
// The subpackage ctl is the command-line client (cellgate ctl).
package admin
