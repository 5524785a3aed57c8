package main

import (
	"maps"
	"testing"
)

// TestGuestsTellMTU: the MTUs of a namespace's links are told to the
// programs when it is looked into, and taken back when it goes; looked
// into again, a link it still has keeps its MTU throughout (told again
// before anything is taken back), and only a link it lost is taken back.
func TestGuestsTellMTU(t *testing.T) {
	g := newGuests(func(string) {})
	told := map[guestKey]uint32{}
	var log []string
	g.tellMTU = func(k guestKey, mtu uint32) { told[k] = mtu; log = append(log, "tell") }
	g.forgetMTU = func(k guestKey) {
		if _, ok := told[k]; !ok {
			t.Errorf("took back %v, never told", k)
		}
		delete(told, k)
		log = append(log, "forget")
	}
	first := &guestNS{cookie: 9, links: []guestLink{{index: 2, mtu: 1500}, {index: 3, mtu: 9000}}}
	g.told(first)
	if want := map[guestKey]uint32{{9, 2}: 1500, {9, 3}: 9000}; !maps.Equal(told, want) {
		t.Fatalf("told %v, want %v", told, want)
	}
	// Looked into again: link 3 gone, link 2's MTU lowered, link 4 new.
	again := &guestNS{cookie: 9, links: []guestLink{{index: 2, mtu: 1280}, {index: 4, mtu: 1500}}}
	log = nil
	g.told(again)
	g.untold(first, again)
	if want := map[guestKey]uint32{{9, 2}: 1280, {9, 4}: 1500}; !maps.Equal(told, want) {
		t.Fatalf("after a second look told %v, want %v", told, want)
	}
	if len(log) != 3 || log[2] != "forget" {
		t.Errorf("a second look did %v; want two tells, then the lost link taken back", log)
	}
	g.untold(again, nil)
	if len(told) != 0 {
		t.Errorf("a namespace gone left %v told", told)
	}
}
