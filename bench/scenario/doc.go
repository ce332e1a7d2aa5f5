// Package scenario runs whole release scenarios under load and reports what
// users saw: `cellgate bench scenario rollout` starts loopback demo cells
// (two stable, one canary) and an in-process node, drives open-loop keyed
// traffic through it with the bench generator, runs a canary rollout
// (1, 5, 25, 50, 100 %) and — with -fault — breaks the canary midway.
//
// The report answers three questions from the client's side of the proxy,
// not from the node's own metrics: how many requests failed in each phase
// (and after the fault), how long the fault lasted until the canary's
// weight was back to 0, and whether sticky routing kept its promise. That
// promise, for weighted rendezvous hashing, is checked key by key from the
// X-Cellgate-Cell of every response (see Audit): during a promotion a key
// only ever moves from its baseline cell into the canary; after a revert it
// is back on exactly the cell it had before the rollout.
package scenario
