package gossip

// Hooks connect the cluster to the packages that own the data. gossip
// replicates opaque bytes; what they mean and how two versions merge is the
// hooks' business. In cellgate there is one kind of replicated state: the
// rollout controller's documents (a rollout's, or a cell's manual weight),
// journalled before they are published, published only by the controller,
// and merged by one rule (rollout.Merge within a document, the cell clock
// between documents); slo owns the SLI windows, which are not state but a
// per-tick stream. Every field is optional: nil means that kind of data is
// neither sent nor received.
//
// Rules for every hook: it must be safe to call from several goroutines,
// must not call Leave or Shutdown, and must not keep a byte slice it is
// given after it returns (copy it). Document, SLI, Health and Members run on one
// delivery goroutine, in arrival order, so a slow hook delays the others but
// never memberlist's packet loop; State and MergeState run on memberlist's
// push/pull goroutine and must return quickly.
type Hooks struct {
	// State returns this node's replicated state (its documents, encoded;
	// cellgate sends the running rollouts, the cells' manual weights and
	// the newest finished rollouts), sent to a peer on join and every
	// PushPullInterval over TCP. Nil: this node contributes no state to
	// push/pull.
	State func() []byte

	// MergeState merges a peer's full state (the peer's State output) from
	// push/pull, on join and periodically. It must be idempotent: the same
	// state arrives again and again, and after a restart a node receives
	// everything it already has (cellgate's controller recognises every
	// document version from its journal, so nothing is applied twice).
	// Nil: peers' state is ignored, so a late joiner learns only what is
	// broadcast after it joined.
	MergeState func(state []byte, from string)

	// Document receives one replicated document from a peer's Publish
	// (broadcast or reliable send). key is the document's name (in
	// cellgate "rollout/" and the document id). It returns true when the document was news (it changed
	// local state); only then does this node relay it on to others, which is
	// what makes a broadcast reach every member quickly and reliably. Each
	// distinct frame is delivered and relayed at most once per node, so a
	// hook that always returns true still terminates. Nil: documents are
	// dropped.
	Document func(key string, doc []byte, from string) (news bool)

	// SLI receives a peer's per-tick SLI payload (from SendSLI). Nil: dropped.
	SLI func(from string, payload []byte)

	// Health receives a peer's health view (from SendHealth): what that
	// node sees of its cells' endpoints. Views are per node, not merged;
	// the hook keeps the newest per sender. Nil: dropped.
	Health func(from string, payload []byte)

	// Members is told of every membership change (join, leave, failure)
	// with the current alive members, sorted. Nil: not told.
	Members func(alive []string)

	// StateGeneration reports the generation of the replicated state, for
	// the cellgate_gossip_state_generation gauge. Nil: the gauge is not
	// exported.
	StateGeneration func() float64
}
