package main

import (
	"net/netip"
	"slices"
	"time"
)

// natCopies finds, among the flows without a socket, those that conntrack
// says are NAT'd: the host's side of a container's connection, seen on the
// uplink. It sets each one's nat to the flow as the container sees it.
func (r *resolver) natCopies(rs []resolution) {
	if r.conntrack == nil || !slices.ContainsFunc(rs, func(res resolution) bool { return res.owner == nil && res.why == noSocket }) {
		return
	}
	// At most every natGap: retries 250 ms apart see a fresh read.
	if time.Since(r.natAt) >= natGap {
		r.natAt = time.Now()
		entries, err := r.conntrack()
		if err != nil {
			entries = nil
		}
		r.nat = natTranslations(entries)
	}
	for i := range rs {
		if t, ok := r.nat[rs[i].fl]; ok && rs[i].owner == nil && rs[i].why == noSocket {
			rs[i].nat = &t
		}
	}
}

// natGap is how long a read of the connection tracking table serves.
const natGap = 200 * time.Millisecond

// natted reports whether NAT rewrote e: its replies do not come back
// from where the connection went, or not to where it came from.
func (e natEntry) natted() bool {
	return e.replySrc != e.origDst || e.replyDst != e.origSrc
}

// natEntry is one conntrack entry: the tuple as the connection began and
// as its replies come back.
type natEntry struct {
	proto              uint8
	origSrc, origDst   netip.AddrPort
	replySrc, replyDst netip.AddrPort
}

// natTranslations maps the flows that NAT rewrote, as seen on the side of
// the translation that no socket has, to the flows as a socket sees them.
// An entry gives two: the flow toward the original destination, (local
// orig.dst, remote orig.src), is (local reply.src, remote reply.dst) at
// the replying end: a container behind a published port (DNAT); and the
// flow toward the original source, (local reply.dst, remote reply.src), is
// (local orig.src, remote orig.dst) at the opening end: a masqueraded
// container (SNAT), or a client of a published port seen on the bridge.
func natTranslations(entries []natEntry) map[flow]flow {
	m := map[flow]flow{}
	for _, e := range entries {
		toDst := flow{e.proto, e.origDst, e.origSrc}
		if t := (flow{e.proto, e.replySrc, e.replyDst}); t != toDst {
			m[toDst] = t
		}
		toSrc := flow{e.proto, e.replyDst, e.replySrc}
		if t := (flow{e.proto, e.origSrc, e.origDst}); t != toSrc {
			m[toSrc] = t
		}
	}
	return m
}

// capturedAsOriginal reports whether st is a NAT'd copy (on the uplink,
// with the host's address) of a flow also captured untranslated (on the
// bridge, with the container's): then its bytes count there.
func (a *accountant) capturedAsOriginal(st *flowState) bool {
	if st.nat == nil {
		return false
	}
	t := a.flows[*st.nat]
	return t != nil && t.owner != nil && t.owner.pid != 0
}
