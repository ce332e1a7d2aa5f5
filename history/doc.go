// Package history keeps what a status chart or a rollout report draws:
// per cell and per flag variant cohort, one point a second for the last
// hour — requests, error ratio, p50 and p99 latency, weight and served
// share (a cohort's within its flag's traffic: CellReading.Group).
//
// A node samples its own cells and cohorts every second (a Sampler reading
// cumulative counters and the SLO engine's latest histogram slice) into a
// Store, a fixed ring per series, so memory is bounded (3600 points of
// 72 B, about 260 KB, per cell and per variant) and nothing is allocated
// per request: the data plane is never touched.
// Downsample folds points into coarser buckets for a rollout's durable
// copy in the journal.
package history
