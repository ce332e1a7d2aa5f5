// Package slo records every proxied request per cell, turns the records
// into SLIs and burn rates over sliding windows, and judges a canary
// against its baseline cells for the rollout controller.
//
// # Recording
//
// Cell.Record is on the proxy's hot path: a few atomic adds, no lock in
// steady state, no allocation. Each cell has
//
//   - a count ring of Interval-wide slots (1 s by default) long enough for
//     the longest burn window or History, each slot two packed words
//     (requests | availability-bad, latency-bad | TTFB-bad), sharded four
//     ways by the recording goroutine's stack address so concurrent
//     recorders do not share a cache line;
//   - a histogram ring of HistogramSlice-wide slices (5 s) spanning
//     HistogramSpan (60 s), each slice two HdrHistograms (total latency and
//     TTFB, 1 µs–60 s, 3 significant figures) whose counts are atomic
//     words in HdrHistogram's own layout, allocated per octave on first use;
//   - lifetime per-status-code counters.
//
// A recorder that finds the clock in a new interval takes the ring's mutex
// once to recycle slots; a recycled histogram slice is drained into the
// cell's lifetime histograms, which the Prometheus export reads — so
// nothing is recorded twice. Readers never lock out recorders: complete
// histogram slices are copied once into an immutable sparse form and merged
// ranges are cached, so the judge's per-tick cost does not grow with
// traffic. HdrHistogram's Merge (~50 µs) is never used.
//
// # SLOs and burn rates
//
// Availability: 5xx responses and proxy errors are bad, 4xx are not.
// Latency: a request slower than LatencyThreshold is bad; likewise TTFB when
// TTFBThreshold is set. Burn rate = bad ratio / (1 − objective). The
// multi-window rules are the SRE workbook's: FastBurn (default 14.4 over
// 1 h and 5 m) pages, SlowBurn (6 over 6 h and 30 m) tickets; both windows
// must burn at the rule's rate and each must hold MinRequests requests,
// otherwise it says "not enough data" and cannot fire. Windows are whole
// intervals ending with the current, partial one.
//
// # The judge
//
// Registry.Judge compares the target cells (merged) with the baseline cells
// (merged) from the step's start until now and returns a Verdict: the
// state, the rule that decided, a sentence, and every number it used, as a
// JSON audit record. In order:
//
//  1. failing — the fast-burn rule fires on the canary for any SLO; or a
//     decisive test (decisive.go: exact two-sample e-values, no sample-size
//     gate, at least 2 bad canary events) finds its errors — against the
//     baseline over the same time, or against its steady ratio before the
//     step while the baseline since the step is no worse — or its share of
//     requests slower than baseline's p99, decisively above twice
//     baseline's; or its error ratio
//     over the shortest suffix of FailWindow holding FailMinRequests
//     requests is at least FailRatio and significantly above baseline's
//     over the same time. Watched cells signal the controller from Record
//     (alarm.go) so failing is judged between ticks too;
//  2. degraded — the slow-burn rule fires; a signal gate is breached; or a
//     sequential test finds the canary's error ratio, or its latency (or
//     TTFB) distribution, worse than baseline's (see below);
//  3. inconclusive — fewer than MinRequests canary or baseline requests
//     since the step began, or a gated signal has no recent value;
//  4. healthy — none of the above.
//
// # Sequential design
//
// The controller asks every second, so a fixed-sample test at level α
// would fire falsely far more often than α over a step. The comparisons are
// therefore normal-mixture sequential probability ratio tests (mSPRT;
// Robbins 1970, Johari et al. 2017, "Always Valid Inference"): for an
// effect estimate θ̂ with null variance V, Λ = sqrt(V/(V+τ²)) ·
// exp(τ²θ̂²/(2V(V+τ²))) is a martingale under the null, so by Ville's
// inequality P(Λ ever ≥ 1/α) ≤ α however often it is evaluated. The judge
// is therefore stateless: each call recomputes Λ on the cumulative data
// since the step began, and a new step (a new since) restarts the test.
//
//   - Error ratio: the two-proportion statistic p̂c − p̂b against a relative
//     non-inferiority margin (H0: pc ≤ (1+ErrorMargin)·pb), pooled variance
//     with a continuity correction, τ = ErrorTau × pooled ratio.
//   - Latency: the Mann–Whitney U statistic over the two HdrHistograms'
//     buckets (ties within a bucket count ½, tie-corrected variance), on
//     the AUC scale P(canary slower) − ½ against LatencyMargin, τ =
//     LatencyTau; it must also see the canary's p99 at least P99Margin
//     above baseline's (practical significance). The latency data are the
//     complete histogram slices within HistogramSpan, so this test looks at
//     a sliding window; its level is checked by simulation rather than by
//     Ville's inequality.
//   - Alpha is the fleet's budget: each of N nodes (SetFleetSize) tests at
//     Alpha / N, split (Bonferroni) half to the decisive error test's
//     steady arm and half evenly to its matched arm, the decisive latency
//     test, the error test and the rank tests.
//
// The simulation in sim_test.go (1000 healthy canaries, 50–500 rps, noisy,
// judged every second for 10 minutes) and the detection-power table in
// README.md measure the result.
//
// # Signals, export, cluster
//
// SetSignal stores named per-cell values (a model quality score, a drift
// metric); a plan's SignalGates turn a breach into degraded. Collector
// exports cellgate_requests_total, the duration and TTFB histograms and
// cellgate_slo_burn_rate gauges on scrape. ExportDelta and MergeRemote move
// a cell's per-interval counts and complete histogram slices between proxy
// nodes, keyed by (node, cell), so the decider judges on the cluster's
// traffic.
package slo
