package techpasssim

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// kernelReader reads a TCP connection with recvmsg, asking the kernel for
// the time the bytes read were received (SO_TIMESTAMPNS): on loopback that
// is within the sender's write, whenever this process gets to read them.
type kernelReader struct {
	rc  syscall.RawConn
	oob []byte
}

// newKernelReader returns a reader of c's kernel receive timestamps, or nil
// if c is not a socket that gives them.
func newKernelReader(c net.Conn) *kernelReader {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return nil
	}
	return &kernelReader{rc: rc, oob: make([]byte, syscall.CmsgSpace(int(unsafe.Sizeof(syscall.Timespec{}))))}
}

// read reads into b as net.Conn.Read does, and returns when the kernel
// received the last of the bytes read (zero if it did not say).
func (k *kernelReader) read(b []byte) (int, time.Time, error) {
	if len(b) == 0 {
		return 0, time.Time{}, nil
	}
	var n, oobn int
	var rerr error
	err := k.rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, _, _, rerr = syscall.Recvmsg(int(fd), b, k.oob, 0)
			if rerr != syscall.EINTR {
				return rerr != syscall.EAGAIN
			}
		}
	})
	if err != nil {
		return 0, time.Time{}, err // a deadline or a closed connection, as net.Conn.Read says it
	}
	if rerr != nil {
		return 0, time.Time{}, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("recvmsg", rerr)}
	}
	if n == 0 {
		return 0, time.Time{}, io.EOF
	}
	return n, k.stamp(k.oob[:oobn]), nil
}

// stamp returns the SCM_TIMESTAMPNS in oob, or the zero time.
func (k *kernelReader) stamp(oob []byte) time.Time {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(syscall.Timespec{})) {
			ts := (*syscall.Timespec)(unsafe.Pointer(&m.Data[0]))
			if ts.Sec == 0 && ts.Nsec == 0 {
				return time.Time{}
			}
			return time.Unix(ts.Unix())
		}
	}
	return time.Time{}
}
