//go:build linux

package main

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The layout of struct io_uring_params, io_uring_sqe and io_uring_cqe and
// the mmap offsets, from include/uapi/linux/io_uring.h.
const (
	ioringOpSend       = 26
	ioringOpRecv       = 27
	ioringEnterGetEvts = 1
	ioringOffSQRing    = 0
	ioringOffCQRing    = 0x8000000
	ioringOffSQEs      = 0x10000000
	sqeSize            = 64
	cqeSize            = 16
)

type uringParams struct {
	SQEntries, CQEntries, Flags, SQThreadCPU, SQThreadIdle, Features, WQFd uint32
	_                                                                      [3]uint32
	SQOff                                                                  struct {
		Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, _ uint32
		_                                                           uint64
	}
	CQOff struct {
		Head, Tail, RingMask, RingEntries, Overflow, CQEs, Flags, _ uint32
		_                                                           uint64
	}
}

// uring is a ring of one entry, used one request at a time.
type uring struct {
	fd            int
	p             uringParams
	sq, cq, sqes  []byte
	sqTail, cqHdr uint32
}

func newUring() (*uring, error) {
	u := &uring{}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&u.p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	u.fd = int(fd)
	var err error
	if u.sq, err = unix.Mmap(u.fd, ioringOffSQRing, int(u.p.SQOff.Array+u.p.SQEntries*4), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, err
	}
	if u.cq, err = unix.Mmap(u.fd, ioringOffCQRing, int(u.p.CQOff.CQEs+u.p.CQEntries*cqeSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, err
	}
	if u.sqes, err = unix.Mmap(u.fd, ioringOffSQEs, int(u.p.SQEntries*sqeSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *uring) close() {
	unix.Munmap(u.sq)
	unix.Munmap(u.cq)
	unix.Munmap(u.sqes)
	unix.Close(u.fd)
}

func word(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

// do submits one SEND or RECV of b on fd and waits for its result.
func (u *uring) do(op uint8, fd int, b []byte) (int, error) {
	idx := u.sqTail & *word(u.sq, u.p.SQOff.RingMask)
	sqe := u.sqes[idx*sqeSize : (idx+1)*sqeSize]
	clear(sqe)
	sqe[0] = op
	binary.LittleEndian.PutUint32(sqe[4:], uint32(fd))
	binary.LittleEndian.PutUint64(sqe[16:], uint64(uintptr(unsafe.Pointer(&b[0]))))
	binary.LittleEndian.PutUint32(sqe[24:], uint32(len(b)))
	*word(u.sq, u.p.SQOff.Array+idx*4) = idx
	u.sqTail++
	atomic.StoreUint32(word(u.sq, u.p.SQOff.Tail), u.sqTail)
	for {
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(u.fd), 1, 1, ioringEnterGetEvts, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, fmt.Errorf("io_uring_enter: %w", errno)
		}
		break
	}
	runtime.KeepAlive(b)
	for atomic.LoadUint32(word(u.cq, u.p.CQOff.Tail)) == u.cqHdr {
		runtime.Gosched()
	}
	cqe := u.cq[u.p.CQOff.CQEs+(u.cqHdr&*word(u.cq, u.p.CQOff.RingMask))*cqeSize:]
	res := int32(binary.LittleEndian.Uint32(cqe[8:]))
	u.cqHdr++
	atomic.StoreUint32(word(u.cq, u.p.CQOff.Head), u.cqHdr)
	if res < 0 {
		return 0, syscall.Errno(-res)
	}
	return int(res), nil
}

// uringTransfer sends n bytes (up) or receives until EOF through io_uring.
func uringTransfer(fd int, n int64, up bool) (int64, error) {
	u, err := newUring()
	if err != nil {
		return 0, err
	}
	defer u.close()
	var m int64
	for !up || m < n {
		var k int
		if up {
			k, err = u.do(ioringOpSend, fd, buf[:min(int64(len(buf)), n-m)])
		} else {
			k, err = u.do(ioringOpRecv, fd, buf)
		}
		if err != nil {
			return m, err
		}
		if k == 0 && !up {
			return m, nil
		}
		m += int64(k)
	}
	return m, nil
}
