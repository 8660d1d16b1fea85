// Command groupgate runs the TechPass group gateway.
//
//	groupgate [-config file] [-demo] [-listen addr] [-store path]   serve
//	groupgate newkey                                                 print a new API key and its config entry
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/groupgate/groupgate/server"
	"github.com/groupgate/groupgate/tenants"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "newkey" {
		newKey()
		return
	}
	m := server.NewMain(os.Stdout, os.Stderr, os.Getenv)
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "groupgate:", err)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "groupgate:", err)
		os.Exit(1)
	}
}

// newKey prints a fresh project API key once, and the entry that goes in the
// configuration (which holds only its hash).
func newKey() {
	key, stored := tenants.NewKey()
	fmt.Printf("API key (give it to the project team; it is not stored anywhere):\n  %s\n\n", key)
	fmt.Printf("Configuration entry (under tenants[].projects[].keys):\n  - id: %s\n    hash: %s\n    scopes: [groups:read, groups:write]\n",
		stored.ID, tenants.HashString(stored.Hash))
}
