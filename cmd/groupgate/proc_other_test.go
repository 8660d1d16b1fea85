//go:build !linux

package main

import "os/exec"

// ownGroup does nothing here: process groups and a parent-death signal
// are set up on Linux only.
func ownGroup(*exec.Cmd) {}

// killGroup kills the child alone.
func killGroup(cmd *exec.Cmd) error { return cmd.Process.Kill() }
