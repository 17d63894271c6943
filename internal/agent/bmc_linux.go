package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's IPMI device interface (include/uapi/linux/ipmi.h), for 64-bit Linux.
type ipmiSystemInterfaceAddr struct {
	addrType int32
	channel  int16
	lun      uint8
	_        uint8
}

type ipmiMsg struct {
	netfn   uint8
	cmd     uint8
	dataLen uint16
	_       uint32
	data    *byte
}

type ipmiReq struct {
	addr    *byte
	addrLen uint32
	_       uint32
	msgid   int64
	msg     ipmiMsg
}

type ipmiRecv struct {
	recvType int32
	_        uint32
	addr     *byte
	addrLen  uint32
	_        uint32
	msgid    int64
	msg      ipmiMsg
}

const (
	ipmiSystemInterfaceAddrType = 0x0c
	ipmiBMCChannel              = 0x0f
	iocWrite, iocRead           = 1, 2
)

func ioc(dir, nr, size uintptr) uintptr { return dir<<30 | size<<16 | 'i'<<8 | nr }

var (
	ipmictlSendCommand    = ioc(iocRead, 13, unsafe.Sizeof(ipmiReq{}))
	ipmictlReceiveMsgTrnc = ioc(iocRead|iocWrite, 11, unsafe.Sizeof(ipmiRecv{}))
)

// readBMCAddress asks the BMC behind root's dev/ipmi0 for its IPv4 address. No device (the
// ipmi_si and ipmi_devintf modules found no BMC, or a VM) is no address and no error.
func readBMCAddress(root string) (string, error) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		return "", nil // the structures above are laid out for 64-bit kernels
	}
	path := filepath.Join(root, "dev/ipmi0")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	fd := int(f.Fd())
	var errs []error
	for ch := 1; ch <= ipmiMaxChannel; ch++ {
		resp, err := ipmiCall(fd, int64(ch), ipmiNetFnTransport, ipmiGetLANConfig, lanIPRequest(ch), 5*time.Second)
		if err != nil {
			errs = append(errs, fmt.Errorf("channel %d: %w", ch, err))
			continue
		}
		if ip, err := parseLANIP(resp); err == nil && ip != "" {
			return ip, nil
		}
	}
	if len(errs) == ipmiMaxChannel {
		return "", fmt.Errorf("read the BMC address through %s: %w", path, errors.Join(errs...))
	}
	return "", nil
}

// ipmiCall sends one request to the BMC and waits (≤ timeout) for its answer.
func ipmiCall(fd int, msgid int64, netfn, cmd uint8, data []byte, timeout time.Duration) ([]byte, error) {
	addr := ipmiSystemInterfaceAddr{addrType: ipmiSystemInterfaceAddrType, channel: ipmiBMCChannel}
	req := ipmiReq{addr: (*byte)(unsafe.Pointer(&addr)), addrLen: uint32(unsafe.Sizeof(addr)), msgid: msgid,
		msg: ipmiMsg{netfn: netfn, cmd: cmd, dataLen: uint16(len(data)), data: unsafe.SliceData(data)}}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), ipmictlSendCommand, uintptr(unsafe.Pointer(&req))); e != 0 {
		return nil, fmt.Errorf("send IPMI request: %w", e)
	}
	runtime.KeepAlive(data)
	runtime.KeepAlive(&addr)
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, errors.New("no IPMI answer within " + timeout.String())
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, int(left/time.Millisecond)+1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return nil, fmt.Errorf("wait for the IPMI answer: %w", err)
		}
		if n <= 0 {
			continue
		}
		var raddr ipmiSystemInterfaceAddr
		buf := make([]byte, 64)
		recv := ipmiRecv{addr: (*byte)(unsafe.Pointer(&raddr)), addrLen: uint32(unsafe.Sizeof(raddr)),
			msg: ipmiMsg{dataLen: uint16(len(buf)), data: unsafe.SliceData(buf)}}
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), ipmictlReceiveMsgTrnc, uintptr(unsafe.Pointer(&recv)))
		runtime.KeepAlive(buf)
		runtime.KeepAlive(&raddr)
		if e != 0 && e != unix.EMSGSIZE {
			return nil, fmt.Errorf("read the IPMI answer: %w", e)
		}
		if recv.msgid != msgid {
			continue // an answer to an earlier, timed-out request
		}
		return buf[:min(int(recv.msg.dataLen), len(buf))], nil
	}
}
