package kernel

import (
	"fmt"
	"slices"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
)

// Profile defaults for the fields a config may leave zero. Nothing in the
// kernel is unbounded: a zero capacity means the profile's bound.
const (
	DefaultNodeTimeout     = 30 * time.Second
	DefaultEdgeCapacity    = 256 // events
	DefaultIngressCapacity = 128 // ~2.5 s of 20 ms frames
	DefaultRetryBuffer     = 512 // ~10 s of 20 ms frames, kept only for retry/fallback/branch nodes
	// DefaultOutstandingInputs bounds the inputs of one invocation handed
	// to the runner and not yet reported taken; the rest wait in the
	// kernel, where the edge's overflow policy can act on them.
	DefaultOutstandingInputs = 16
)

// Node failure policies (NodeSpec.OnFailure).
const (
	PolicyAbort    = "abort"
	PolicyRetry    = "retry"
	PolicyFallback = "fallback"
	PolicyBranch   = "branch"
)

// Edge overflow modes (EdgeSpec.Overflow).
const (
	OverflowShed    = "shed"    // drop the oldest queued event of the edge
	OverflowDegrade = "degrade" // coalesce text into the newest queued event; other payloads shed
)

// Node join modes (NodeSpec.Join).
const (
	JoinAll    = "all"    // fan-in: inputs from every upstream, merged in arrival order
	JoinSelect = "select" // the first upstream to deliver wins; the others are ignored
)

// graph is the validated, indexed form of a GraphSpec.
type graph struct {
	nodes    []NodeSpec     // topological order (deterministic: ties by config order)
	index    map[string]int // node id -> position in nodes
	edges    []EdgeSpec     // config order
	out      map[string][]int
	in       map[string][]int
	upstream map[string][]string // distinct upstream ids (may include Ingress), config order
	branchOf map[string]string   // dormant branch node -> the node it stands in for

	// Resolved at compile time so that routing a frame looks nothing up
	// by name: the out-edges of Ingress and of each node (by position in
	// nodes), and each edge's target position (-1: Egress).
	ingressOut []int
	nodeOut    [][]int
	edgeTo     []int
}

// inputOwner is the node whose inputs a node receives: a branch takes over
// its primary's inputs.
func (cg *graph) inputOwner(node string) string {
	if p, ok := cg.branchOf[node]; ok {
		return p
	}
	return node
}

func edgeName(e EdgeSpec) string { return e.From + "->" + e.To }

// CheckGraph reports what is wrong with g (cycles, unreachable nodes,
// bad edges) with the same typed errors NewSession returns, without a
// session: config validation uses it.
func CheckGraph(g GraphSpec) error {
	_, err := compileGraph(g)
	return err
}

func compileGraph(g GraphSpec) (*graph, error) {
	cg := &graph{index: map[string]int{}, out: map[string][]int{}, in: map[string][]int{}, upstream: map[string][]string{}, branchOf: map[string]string{}}
	specs := map[string]NodeSpec{}
	for _, n := range g.Nodes {
		switch {
		case n.ID == "" || n.ID == Ingress || n.ID == Egress:
			return nil, &GraphError{Kind: ErrDuplicate, Node: n.ID, Msg: "node id is empty or reserved"}
		case specs[n.ID].ID != "":
			return nil, &GraphError{Kind: ErrDuplicate, Node: n.ID, Msg: "node declared twice"}
		case n.Provider == "":
			return nil, &GraphError{Kind: ErrNoProvider, Node: n.ID, Msg: "set provider"}
		case n.Timeout < 0 || n.MaxRetries < 0:
			return nil, &GraphError{Kind: ErrBadPolicy, Node: n.ID, Msg: "negative timeout or max_retries"}
		}
		switch n.OnFailure {
		case "", PolicyAbort, PolicyRetry:
		case PolicyFallback:
			if n.Fallback == "" && len(n.Providers) < 2 {
				return nil, &GraphError{Kind: ErrBadPolicy, Node: n.ID, Msg: "on_failure fallback needs a fallback provider"}
			}
		case PolicyBranch:
			if n.BranchTo == "" || n.BranchTo == n.ID {
				return nil, &GraphError{Kind: ErrBadPolicy, Node: n.ID, Msg: "on_failure branch needs branch_to naming another node"}
			}
		default:
			return nil, &GraphError{Kind: ErrBadPolicy, Node: n.ID, Msg: fmt.Sprintf("unknown on_failure %q", n.OnFailure)}
		}
		if len(n.Providers) > 0 && n.Providers[0] != n.Provider {
			return nil, &GraphError{Kind: ErrBadPolicy, Node: n.ID, Msg: fmt.Sprintf("provider list starts with %q, not the node's provider %q", n.Providers[0], n.Provider)}
		}
		if n.Join != "" && n.Join != JoinAll && n.Join != JoinSelect {
			return nil, &GraphError{Kind: ErrBadPolicy, Node: n.ID, Msg: fmt.Sprintf("unknown join %q", n.Join)}
		}
		specs[n.ID] = n
	}
	known := func(id string) bool { return specs[id].ID != "" }
	seen := map[string]bool{}
	for i, e := range g.Edges {
		name := edgeName(e)
		switch {
		case e.From != Ingress && !known(e.From):
			return nil, &GraphError{Kind: ErrUnknownNode, Node: e.From, Edge: name, Msg: "unknown source"}
		case e.To != Egress && !known(e.To):
			return nil, &GraphError{Kind: ErrUnknownNode, Node: e.To, Edge: name, Msg: "unknown target"}
		case e.From == Egress || e.To == Ingress:
			return nil, &GraphError{Kind: ErrBadPolicy, Edge: name, Msg: "ingress is only a source, egress only a sink"}
		case e.From == e.To:
			return nil, &GraphError{Kind: ErrCycle, Node: e.From, Edge: name, Msg: "self loop"}
		case seen[name]:
			return nil, &GraphError{Kind: ErrDuplicate, Edge: name, Msg: "edge declared twice"}
		case e.Capacity < 0 || e.BlockFor < 0:
			return nil, &GraphError{Kind: ErrBadPolicy, Edge: name, Msg: "negative capacity or block_for"}
		case e.Overflow != "" && e.Overflow != OverflowShed && e.Overflow != OverflowDegrade:
			return nil, &GraphError{Kind: ErrBadPolicy, Edge: name, Msg: fmt.Sprintf("unknown overflow %q", e.Overflow)}
		}
		seen[name] = true
		cg.edges = append(cg.edges, e)
		cg.out[e.From] = append(cg.out[e.From], i)
		cg.in[e.To] = append(cg.in[e.To], i)
		if !slices.Contains(cg.upstream[e.To], e.From) {
			cg.upstream[e.To] = append(cg.upstream[e.To], e.From)
		}
	}
	if err := cg.branches(g.Nodes, known); err != nil {
		return nil, err
	}
	if err := cg.order(g.Nodes); err != nil {
		return nil, err
	}
	if err := cg.checkPaths(g.Nodes); err != nil {
		return nil, err
	}
	cg.resolve()
	return cg, nil
}

// resolve fills the index forms of out and of each edge's target.
func (cg *graph) resolve() {
	cg.ingressOut = cg.out[Ingress]
	cg.nodeOut = make([][]int, len(cg.nodes))
	for i, n := range cg.nodes {
		cg.nodeOut[i] = cg.out[n.ID]
	}
	cg.edgeTo = make([]int, len(cg.edges))
	for i, e := range cg.edges {
		cg.edgeTo[i] = -1
		if e.To != Egress {
			cg.edgeTo[i] = cg.index[e.To]
		}
	}
}

// order sorts nodes topologically (Kahn), ties broken by config order, and
// reports a cycle naming one node on it.
func (cg *graph) order(nodes []NodeSpec) error {
	indeg := map[string]int{}
	for _, n := range nodes {
		for _, up := range cg.upstream[n.ID] {
			if up != Ingress {
				indeg[n.ID]++
			}
		}
	}
	done := map[string]bool{}
	for len(cg.nodes) < len(nodes) {
		progressed := false
		for _, n := range nodes {
			if done[n.ID] || indeg[n.ID] > 0 {
				continue
			}
			done[n.ID] = true
			progressed = true
			cg.index[n.ID] = len(cg.nodes)
			cg.nodes = append(cg.nodes, n)
			for _, ei := range cg.out[n.ID] {
				if to := cg.edges[ei].To; to != Egress {
					indeg[to]--
				}
			}
		}
		if !progressed {
			for _, n := range nodes {
				if !done[n.ID] {
					return &GraphError{Kind: ErrCycle, Node: n.ID, Msg: "node is on a cycle"}
				}
			}
		}
	}
	return nil
}

// branches validates fallback branches: the branch exists, is dormant (no
// in-edges), stands in for one node, and only leads to Egress or to its
// primary's downstream nodes (which wait for the primary anyway).
func (cg *graph) branches(nodes []NodeSpec, known func(string) bool) error {
	for _, n := range nodes {
		if n.BranchTo == "" {
			continue
		}
		b := n.BranchTo
		switch {
		case n.OnFailure != PolicyBranch:
			return &GraphError{Kind: ErrBadPolicy, Node: n.ID, Msg: "branch_to needs on_failure branch"}
		case !known(b):
			return &GraphError{Kind: ErrUnknownNode, Node: b, Msg: "branch_to names an unknown node"}
		case len(cg.in[b]) > 0:
			return &GraphError{Kind: ErrBadPolicy, Node: b, Msg: "a branch node is dormant: it must have no in-edges"}
		case cg.branchOf[b] != "":
			return &GraphError{Kind: ErrDuplicate, Node: b, Msg: "branch node serves two primaries"}
		}
		cg.branchOf[b] = n.ID
		for _, ei := range cg.out[b] {
			to := cg.edges[ei].To
			ok := to == Egress
			for _, pj := range cg.out[n.ID] {
				ok = ok || cg.edges[pj].To == to
			}
			if !ok {
				return &GraphError{Kind: ErrBadPolicy, Node: b, Edge: edgeName(cg.edges[ei]), Msg: "a branch may only lead to egress or its primary's downstream"}
			}
		}
	}
	for _, n := range nodes {
		if _, isBranch := cg.branchOf[n.ID]; isBranch && n.BranchTo != "" {
			return &GraphError{Kind: ErrBadPolicy, Node: n.ID, Msg: "branches cannot chain"}
		}
	}
	return nil
}

func (cg *graph) checkPaths(nodes []NodeSpec) error {
	fromIngress := cg.reach(Ingress, cg.out, func(e EdgeSpec) string { return e.To })
	for b, p := range cg.branchOf { // a branch is reached through its primary
		if fromIngress[p] {
			fromIngress[b] = true
			for id := range cg.reach(b, cg.out, func(e EdgeSpec) string { return e.To }) {
				fromIngress[id] = true
			}
		}
	}
	toEgress := cg.reach(Egress, cg.in, func(e EdgeSpec) string { return e.From })
	if !fromIngress[Egress] {
		return &GraphError{Kind: ErrUnreachable, Msg: "no path from ingress to egress"}
	}
	for _, n := range nodes {
		if !fromIngress[n.ID] {
			return &GraphError{Kind: ErrUnreachable, Node: n.ID, Msg: "not reachable from ingress"}
		}
		if !toEgress[n.ID] {
			return &GraphError{Kind: ErrUnreachable, Node: n.ID, Msg: "does not reach egress"}
		}
	}
	return nil
}

func (cg *graph) reach(start string, adj map[string][]int, next func(EdgeSpec) string) map[string]bool {
	seen := map[string]bool{start: true}
	stack := []string{start}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, ei := range adj[id] {
			if n := next(cg.edges[ei]); !seen[n] {
				seen[n] = true
				stack = append(stack, n)
			}
		}
	}
	return seen
}

// accepts reports whether edge e carries events of type t.
func accepts(e EdgeSpec, t eventabi.Type) bool {
	return len(e.Types) == 0 || slices.Contains(e.Types, t)
}
