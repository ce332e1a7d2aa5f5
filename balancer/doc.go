// Package balancer owns the routing table: the cells, their weights and the
// weighted rendezvous hashing that maps a sticky key to a cell.
//
// A Table is an immutable snapshot. Callers build a new one for every change
// (a weight step, a reload) and publish it with one atomic pointer swap, so
// the hot path reads it without locks.
//
// Why weighted rendezvous hashing (score = −w / ln h, h uniform in (0,1)):
// a key stays on its cell while weights hold; raising one cell's weight can
// only move keys to that cell, because no other cell's score changes; and
// setting it back returns every key to exactly the cell it had, because the
// scores are a pure function of (seed, key, cell name, weight). Rings and
// Maglev tables only approximate these properties; see ARCHITECTURE.md for
// the measured comparison. The cost is O(cells) per pick, which is cheap for
// tens of cells.
//
// Package balancer imports no other package of cellgate.
package balancer
