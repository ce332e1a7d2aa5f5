// Package rollout runs release plans: it moves cell weights step by step,
// holds them while the judge is unsure, and reverts them by itself when the
// judge says the targets hurt users.
//
// The package has three parts, one concept per file:
//   - plans (plan.go, validate.go, weights.go): what an operator asks for, and
//     the weights each step of each strategy means;
//   - the controller (controller.go, tick.go, actions.go, remote.go): the
//     state machine that advances, holds and reverts, safe for concurrent use
//     by the ticker, the admin API and gossip;
//   - the journal (journal.go): a bbolt file holding the current rollout
//     documents, an append-only audit log and the release catalog. Every
//     decision is committed to it before the balancer sees it.
//
// The package imports neither the judge (slo) nor the balancer: both are
// reached through the optional hooks in Hooks.
package rollout
