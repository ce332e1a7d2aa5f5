// Package flags assigns feature-flag variants at the edge.
//
// A flag's variants are weighted like cells, and a request's variant comes
// from the same sticky key as its cell through the balancer's weighted
// rendezvous hash, salted with the flag's name (balancer.SaltFor): so the
// assignment is sticky, independent of the cell choice and of every other
// flag, monotone (raising one variant's weight only moves keys into it)
// and exactly reverted (restoring the weights restores every key's
// variant), for the reasons balancer/doc.go gives.
//
// A Set is an immutable snapshot of every flag and its weights; an Engine
// owns the current Set behind one atomic pointer, so the request path
// reads it without locks and never allocates. The rollout controller sees
// each variant as a pseudo-cell named "flag=variant" (CellName): its
// weights, reverts, journal, gossip and judge are the ones cells have; the
// node hands those weights to Engine.SetWeights.
//
// Package flags imports balancer and no other package of cellgate.
package flags
