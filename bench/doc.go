// Package bench is the load generator behind `cellgate bench`.
//
// It drives HTTP/1.1 load, either open-loop at a fixed rate or closed-loop
// over N keep-alive connections (a minimal client of its own per connection
// for http://, fasthttp's HostClient for https://), and records
// latencies into HdrHistograms. In open-loop mode every request has an
// intended send time on a fixed schedule and its latency is measured from
// that time, not from when the generator got round to sending it: when the
// target stalls, the requests that should have been sent during the stall
// are charged for the wait, so coordinated omission does not hide the stall
// (the correction wrk2 makes).
//
// Run drives one target and returns a Result; RunCompare drives several
// targets interleaved in rounds. Both take Hooks so that scenarios can watch
// every response (which cell served which key) without parsing output.
// Main is the command line behind `cellgate bench`.
package bench
