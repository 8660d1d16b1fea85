package main

import (
	"os/exec"
	"syscall"
)

// ownGroup makes a child the leader of a process group of its own, so that
// it and whatever it starts can be killed together, and has the kernel kill
// it if the test process dies first (a go test timeout, say).
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process group of a child started with ownGroup.
func killGroup(cmd *exec.Cmd) error {
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
