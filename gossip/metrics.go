package gossip

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// path is how a message travelled.
type path int

const (
	pathUDP path = iota
	pathTCP
)

var pathNames = [...]string{pathUDP: "udp", pathTCP: "tcp"}

// dropReason says why a message was not delivered or sent.
type dropReason int

const (
	dropDecode dropReason = iota
	dropInboxFull
	dropSend
)

var dropNames = [...]string{dropDecode: "decode", dropInboxFull: "inbox_full", dropSend: "send_error"}

var typeNames = map[msgType]string{msgDocument: "document", msgSLI: "sli", msgState: "state", msgLeave: "leave", msgHealth: "health"}

// msgTypes lists every type in label order.
var msgTypes = []msgType{msgDocument, msgSLI, msgState, msgLeave, msgHealth}

// stats are this node's counters: plain atomics, read by the collector.
type stats struct {
	sentN     [msgLast + 1][len(pathNames)]atomic.Uint64
	receivedN [msgLast + 1]atomic.Uint64
	droppedN  [len(dropNames)]atomic.Uint64
	relayedN  atomic.Uint64
	joins     atomic.Uint64
	leaves    atomic.Uint64
	fails     atomic.Uint64
}

func (s *stats) sent(t msgType, p path) { s.sentN[t][p].Add(1) }
func (s *stats) received(t msgType)     { s.receivedN[t].Add(1) }
func (s *stats) dropped(r dropReason)   { s.droppedN[r].Add(1) }
func (s *stats) relayed()               { s.relayedN.Add(1) }

func (s *stats) event(k eventKind) {
	switch k {
	case evJoin:
		s.joins.Add(1)
	case evLeave:
		s.leaves.Add(1)
	case evFail:
		s.fails.Add(1)
	}
}

// Collector exports the cluster's metrics (cellgate_gossip_*). It computes
// them at scrape time from the live state; register it on any registry.
func (c *Cluster) Collector() prometheus.Collector { return (*collector)(c) }

type collector Cluster

var (
	descMembers   = prometheus.NewDesc("cellgate_gossip_members", "Alive cluster members seen by this node, itself included.", nil, nil)
	descKnown     = prometheus.NewDesc("cellgate_gossip_known_members", "Last known membership: members seen alive, minus those that left gracefully.", nil, nil)
	descMajority  = prometheus.NewDesc("cellgate_gossip_has_majority", "1 when alive members are a majority of the last known membership (promotions allowed).", nil, nil)
	descDecider   = prometheus.NewDesc("cellgate_gossip_is_decider", "1 when this node is the decider (lowest alive name).", nil, nil)
	descHealth    = prometheus.NewDesc("cellgate_gossip_health_score", "memberlist's awareness health score; 0 is healthy, higher means this node is slow to answer probes.", nil, nil)
	descQueued    = prometheus.NewDesc("cellgate_gossip_broadcast_queue", "Documents waiting in the UDP broadcast queue.", nil, nil)
	descEvents    = prometheus.NewDesc("cellgate_gossip_member_events_total", "Membership changes seen, by event.", []string{"event"}, nil)
	descSent      = prometheus.NewDesc("cellgate_gossip_messages_sent_total", "Messages sent, by type and path (udp broadcast or tcp).", []string{"type", "path"}, nil)
	descReceived  = prometheus.NewDesc("cellgate_gossip_messages_received_total", "Messages received from peers, by type.", []string{"type"}, nil)
	descDropped   = prometheus.NewDesc("cellgate_gossip_messages_dropped_total", "Messages dropped, by reason.", []string{"reason"}, nil)
	descRelayed   = prometheus.NewDesc("cellgate_gossip_documents_relayed_total", "Documents this node relayed because they were news to it.", nil, nil)
	descStateGen  = prometheus.NewDesc("cellgate_gossip_state_generation", "Generation of the replicated state on this node.", nil, nil)
	collectorDesc = []*prometheus.Desc{descMembers, descKnown, descMajority, descDecider, descHealth, descQueued,
		descEvents, descSent, descReceived, descDropped, descRelayed, descStateGen}
)

func (k *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range collectorDesc {
		ch <- d
	}
}

func (k *collector) Collect(ch chan<- prometheus.Metric) {
	c := (*Cluster)(k)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descMembers, float64(len(c.Members())))
	gauge(descKnown, float64(len(c.KnownMembers())))
	gauge(descMajority, b2f(c.HasMajority()))
	gauge(descDecider, b2f(c.IsDecider()))
	gauge(descHealth, float64(c.ml.GetHealthScore()))
	gauge(descQueued, float64(c.queue.NumQueued()))
	counter(descEvents, c.stats.joins.Load(), string(evJoin))
	counter(descEvents, c.stats.leaves.Load(), string(evLeave))
	counter(descEvents, c.stats.fails.Load(), string(evFail))
	for _, t := range msgTypes {
		for p, pn := range pathNames {
			counter(descSent, c.stats.sentN[t][p].Load(), typeNames[t], pn)
		}
		counter(descReceived, c.stats.receivedN[t].Load(), typeNames[t])
	}
	for r, rn := range dropNames {
		counter(descDropped, c.stats.droppedN[r].Load(), rn)
	}
	counter(descRelayed, c.stats.relayedN.Load())
	if c.hooks.StateGeneration != nil {
		gauge(descStateGen, c.hooks.StateGeneration())
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
