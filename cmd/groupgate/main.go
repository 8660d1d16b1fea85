// Command groupgate runs the TechPass group gateway.
//
//	groupgate [-config file] [-demo] [-listen addr] [-store path]   serve
//	groupgate newkey                                                 print a new API key and its config entry
//	groupgate backup -url URL -out FILE                              download and verify a hot backup
//	                                                                 (operator key in -key-file or GROUPGATE_OPERATOR_KEY,
//	                                                                 else as the client reads its key)
//	groupgate copy-store --from STORE --to STORE                     copy a stopped store between bbolt and PostgreSQL
//	groupgate groups|operations|queue|keys|tenants|projects|audit …  the command-line client (package cli;
//	                                                                 groupgate help lists its commands)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/groupgate/groupgate/backup"
	"github.com/groupgate/groupgate/cli"
	"github.com/groupgate/groupgate/server"
	"github.com/groupgate/groupgate/tenants"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "newkey" {
		if len(os.Args) > 2 {
			const usage = "Usage: groupgate newkey\n\nPrints a new project API key once, and the configuration entry holding its hash."
			if isHelp(os.Args[2]) {
				fmt.Println(usage)
				os.Exit(0)
			}
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		newKey()
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "backup" {
		os.Exit(runBackup(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "copy-store" {
		os.Exit(runCopyStore(context.Background(), os.Args[2:], os.Stdout, os.Stderr, os.Getenv))
	}
	if len(os.Args) == 2 && (isHelp(os.Args[1]) || os.Args[1] == "help") {
		os.Exit(help())
	}
	if len(os.Args) > 1 && cli.IsCommand(os.Args[1]) {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Run(ctx, os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr})
		stop()
		os.Exit(code)
	}
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
		// The server takes flags only: this is a mistyped command.
		fmt.Fprintf(os.Stderr, "groupgate: unknown command %q; 'groupgate help' lists the commands\n", os.Args[1])
		os.Exit(2)
	}
	m := server.NewMain(os.Stdout, os.Stderr, os.Getenv)
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "groupgate:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "groupgate:", err)
		os.Exit(1)
	}
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// help prints both halves of the program: the server's flags and the
// client's commands.
func help() int {
	fmt.Println("Usage: groupgate [flags]            run the gateway")
	fmt.Println("       groupgate newkey             print a new API key and its configuration entry")
	fmt.Println("       groupgate backup --help      download and verify a hot backup")
	fmt.Println("       groupgate copy-store --help  copy a stopped store between bbolt and PostgreSQL")
	fmt.Println("       groupgate <command> ...      the command-line client (below)")
	fmt.Println()
	fmt.Println("Server flags:")
	m := server.NewMain(os.Stdout, os.Stdout, os.Getenv)
	_ = m.ParseFlags([]string{"-help"})
	fmt.Println()
	cli.Usage(os.Stdout)
	return 0
}

// newKey prints a fresh project API key once, and the entry that goes in the
// configuration (which holds only its hash).
func newKey() {
	key, stored := tenants.NewKey()
	fmt.Printf("API key (give it to the project team; it is not stored anywhere):\n  %s\n\n", key)
	fmt.Printf("Configuration entry (under tenants[].projects[].keys):\n  - id: %s\n    hash: %s\n    scopes: [groups:read, groups:write]\n",
		stored.ID, tenants.HashString(stored.Hash))
}

// runBackup downloads a hot backup from a running service and verifies it.
func runBackup(args []string) int {
	fs := flag.NewFlagSet("groupgate backup", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "base URL of the running service")
	out := fs.String("out", "", "file to write (must not exist)")
	keyFile := fs.String("key-file", "", "file holding an operator API key, readable by its owner only (default: $GROUPGATE_OPERATOR_KEY, else $GROUPGATE_KEY_FILE or $GROUPGATE_KEY)")
	fs.SetOutput(os.Stdout)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *out == "" {
		fmt.Fprintln(os.Stderr, "groupgate backup: -out is required")
		return 2
	}
	// GROUPGATE_OPERATOR_KEY (documented before the client existed) comes
	// before the client's own variables.
	key := os.Getenv("GROUPGATE_OPERATOR_KEY")
	if *keyFile != "" || key == "" {
		var err error
		if key, err = cli.Key(os.Getenv, *keyFile); err != nil {
			fmt.Fprintln(os.Stderr, "groupgate backup:", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := backup.Download(ctx, &http.Client{Timeout: 30 * time.Minute}, *url, key, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "groupgate backup:", err)
		return 1
	}
	fmt.Printf("backup written to %s (%d bytes) and verified\n", *out, n)
	return 0
}
