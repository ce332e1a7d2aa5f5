// Package testtoml writes the config texts that tests start cellgate nodes
// from: the head every test node shares and the tables tests repeat
// (cells, gossip), so that each test spells out only the keys that make
// its node different, next to the test.
//
// Only tests import it (TestOnlyTestsImport checks, for every
// internal/test* package).
package testtoml

import (
	"fmt"
	"strings"
)

// Head is the head of a test node's config text: node_name, a listener
// and an admin server on loopback port 0, and the journal's path. listen
// adds keys to [listen] (`drain_timeout = "2s"`, "h2c = true"), one a
// string. The test appends its own tables and cells after it.
func Head(name, journal string, listen ...string) string {
	return head(name, journal, "127.0.0.1:0", listen)
}

// HeadNoAdmin is Head for a node without an admin server (addr = ""), as
// the fleet tests run their many nodes.
func HeadNoAdmin(name, journal string, listen ...string) string {
	return head(name, journal, "", listen)
}

func head(name, journal, admin string, listen []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node_name = %q\n[listen]\naddr = \"127.0.0.1:0\"\n", name)
	for _, kv := range listen {
		b.WriteString(kv + "\n")
	}
	fmt.Fprintf(&b, "[admin]\naddr = %q\n[state]\npath = %q\n", admin, journal)
	return b.String()
}

// Cell is one [[cell]] table: its name, version (left out when empty),
// weight and endpoints. Keys the test wants on the cell besides (health,
// protocol) follow it in the text.
func Cell(name, version string, weight float64, endpoints ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[[cell]]\nname = %q\n", name)
	if version != "" {
		fmt.Fprintf(&b, "version = %q\n", version)
	}
	quoted := make([]string, len(endpoints))
	for i, e := range endpoints {
		quoted[i] = fmt.Sprintf("%q", e)
	}
	fmt.Fprintf(&b, "weight = %g\nendpoints = [%s]\n", weight, strings.Join(quoted, ", "))
	return b.String()
}

// Gossip is a [gossip] table on loopback port 0 that joins join, or no one
// when join is empty (the first node of a test's fleet).
func Gossip(join string) string {
	if join == "" {
		return "[gossip]\nbind = \"127.0.0.1:0\"\n"
	}
	return fmt.Sprintf("[gossip]\nbind = \"127.0.0.1:0\"\njoin = [%q]\n", join)
}
