package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The few struct members' offsets the owner programs need, read from the
// kernel's BTF in one walk over its types, without decoding them:
// cilium/ebpf's btf.LoadKernelSpec decodes and indexes every one of the
// kernel's types (some 130,000), which was most of netuse's start-up
// (BENCHMARKS.md). The format is the kernel's
// Documentation/bpf/btf.rst: a header, the types one after another (a
// 12-byte btf_type and what its kind adds), and a table of strings.

// kernelBTFPath is where the kernel publishes its own BTF.
const kernelBTFPath = "/sys/kernel/btf/vmlinux"

// BTF kinds, as btf_type's info has them.
const (
	btfInt       = 1
	btfPtr       = 2
	btfArray     = 3
	btfStruct    = 4
	btfUnion     = 5
	btfEnum      = 6
	btfFwd       = 7
	btfTypedef   = 8
	btfVolatile  = 9
	btfConst     = 10
	btfRestrict  = 11
	btfFunc      = 12
	btfFuncProto = 13
	btfVar       = 14
	btfDatasec   = 15
	btfFloat     = 16
	btfDeclTag   = 17
	btfTypeTag   = 18
	btfEnum64    = 19
)

// btfTypes is a BTF blob's types, found by ID.
type btfTypes struct {
	bo    binary.ByteOrder
	types []byte   // the type section
	strs  []byte   // the string section
	at    []uint32 // each type's offset in types, by ID; ID 0 is void
}

// parseBTF indexes the types of the BTF blob b, which it keeps.
func parseBTF(b []byte) (*btfTypes, error) {
	if len(b) < 24 {
		return nil, errors.New("BTF: shorter than its header")
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if bo.Uint16(b) != 0xeb9f {
		if bo = binary.BigEndian; bo.Uint16(b) != 0xeb9f {
			return nil, errors.New("BTF: no magic number")
		}
	}
	hdr := uint64(bo.Uint32(b[4:]))
	section := func(off, n uint32) ([]byte, error) {
		start, end := hdr+uint64(off), hdr+uint64(off)+uint64(n)
		if end > uint64(len(b)) {
			return nil, fmt.Errorf("BTF: a section of %d bytes at %d past its end (%d)", n, start, len(b))
		}
		return b[start:end], nil
	}
	t := &btfTypes{bo: bo, at: make([]uint32, 1, max(1, len(b)/40))}
	var err error
	if t.types, err = section(bo.Uint32(b[8:]), bo.Uint32(b[12:])); err != nil {
		return nil, err
	}
	if t.strs, err = section(bo.Uint32(b[16:]), bo.Uint32(b[20:])); err != nil {
		return nil, err
	}
	for off := 0; off < len(t.types); {
		if off+12 > len(t.types) {
			return nil, fmt.Errorf("BTF: type %d cut short", len(t.at))
		}
		info := bo.Uint32(t.types[off+4:])
		vlen := int(info & 0xffff)
		n := 12
		switch kind := info >> 24 & 0x1f; kind {
		case btfInt, btfVar, btfDeclTag:
			n += 4
		case btfArray:
			n += 12
		case btfStruct, btfUnion, btfDatasec, btfEnum64:
			n += 12 * vlen
		case btfEnum, btfFuncProto:
			n += 8 * vlen
		case btfPtr, btfFwd, btfTypedef, btfVolatile, btfConst, btfRestrict, btfFunc, btfFloat, btfTypeTag:
		default:
			return nil, fmt.Errorf("BTF: type %d of unknown kind %d", len(t.at), kind)
		}
		t.at = append(t.at, uint32(off))
		off += n
	}
	return t, nil
}

// name returns the string at off, without its NUL.
func (t *btfTypes) name(off uint32) []byte {
	if uint64(off) >= uint64(len(t.strs)) {
		return nil
	}
	s := t.strs[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}

// head returns type id's name offset, kind, vlen, kind_flag and its
// btf_type's third word (a size, or a type's ID), and where what its kind
// adds starts.
func (t *btfTypes) head(id uint32) (nameOff, kind uint32, vlen int, flag bool, sizeType uint32, rest int) {
	off := int(t.at[id])
	info := t.bo.Uint32(t.types[off+4:])
	return t.bo.Uint32(t.types[off:]), info >> 24 & 0x1f, int(info & 0xffff), info>>31 == 1, t.bo.Uint32(t.types[off+8:]), off + 12
}

// structs returns the IDs of the structs with these names (a name not
// found is not in the map).
func (t *btfTypes) structs(names ...string) map[string]uint32 {
	found := make(map[string]uint32, len(names))
	for id := uint32(1); id < uint32(len(t.at)); id++ {
		nameOff, kind, _, _, _, _ := t.head(id)
		if kind != btfStruct {
			continue
		}
		n := t.name(nameOff)
		for _, want := range names {
			if _, ok := found[want]; !ok && string(n) == want {
				found[want] = id
			}
		}
	}
	return found
}

// memberOffset finds the member of struct or union id by name, looking
// into anonymous structs and unions, and returns its offset in bytes.
func (t *btfTypes) memberOffset(id uint32, name string) (uint32, bool) {
	return t.memberOffsetDepth(id, name, 0)
}

// btfNesting bounds how deep memberOffset looks into anonymous members,
// against a blob whose types refer to themselves.
const btfNesting = 16

func (t *btfTypes) memberOffsetDepth(id uint32, name string, depth int) (uint32, bool) {
	if depth > btfNesting || id == 0 || id >= uint32(len(t.at)) {
		return 0, false
	}
	_, kind, vlen, flag, _, rest := t.head(id)
	if kind != btfStruct && kind != btfUnion || rest+12*vlen > len(t.types) {
		return 0, false
	}
	for i := range vlen {
		m := t.types[rest+12*i:]
		mName, mType, mOff := t.bo.Uint32(m), t.bo.Uint32(m[4:]), t.bo.Uint32(m[8:])
		if flag {
			mOff &= 0xffffff // the high 8 bits: a bitfield's size
		}
		if n := t.name(mName); len(n) > 0 {
			if string(n) == name {
				return mOff / 8, true
			}
			continue
		}
		if off, ok := t.memberOffsetDepth(t.underlying(mType), name, depth+1); ok {
			return mOff/8 + off, true
		}
	}
	return 0, false
}

// underlying skips typedefs and qualifiers.
func (t *btfTypes) underlying(id uint32) uint32 {
	for range btfNesting {
		if id == 0 || id >= uint32(len(t.at)) {
			return 0
		}
		_, kind, _, _, next, _ := t.head(id)
		switch kind {
		case btfTypedef, btfVolatile, btfConst, btfRestrict, btfTypeTag:
			id = next
		default:
			return id
		}
	}
	return 0
}

// readKernelBTF maps the kernel's BTF, or reads it where it cannot be
// mapped (before Linux 6.16); done unmaps it.
func readKernelBTF() (b []byte, done func(), err error) {
	f, err := os.Open(kernelBTFPath)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		if m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_PRIVATE); err == nil {
			return m, func() { unix.Munmap(m) }, nil
		}
	}
	b, err = os.ReadFile(kernelBTFPath)
	return b, func() {}, err
}
