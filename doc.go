// Package cellgate wires one cellgate node together: the config, the data
// plane (proxy, balancer), the SLO engine, the rollout controller and its
// journal, gossip and the admin API. It starts, reloads, drains and stops
// them as one.
//
// The demo, the bench scenarios and the end-to-end tests run a Node
// in-process; `cellgate serve` runs exactly the same Node.
package cellgate
