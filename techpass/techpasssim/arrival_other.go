//go:build !linux

package techpasssim

import (
	"net"
	"time"
)

// kernelReader is Linux's; elsewhere a request is stamped when read.
type kernelReader struct{}

func newKernelReader(net.Conn) *kernelReader { return nil }

func (*kernelReader) read([]byte) (int, time.Time, error) { panic("unreachable") }
