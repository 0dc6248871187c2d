// Command snowfall-client is a Tor pluggable transport client for Snowflake,
// a drop-in replacement for Tor's snowflake-client: the same torrc
// ClientTransportPlugin and Bridge lines work. See doc/client.md and the
// snowfall-client(1) manual page.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/snowfall-pt/snowfall/client/torpt"
	"github.com/snowfall-pt/snowfall/internal/gctune"
)

func main() {
	gctune.Apply()
	opts, err := torpt.ParseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if torpt.IsHelp(err) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if opts.ShowVersion {
		fmt.Fprint(os.Stderr, torpt.VersionText())
		os.Exit(0)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if os.Getenv("TOR_PT_EXIT_ON_STDIN_CLOSE") == "1" {
		// Tor closes our stdin when it wants us gone (PT spec §3.3.1).
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		go func() {
			io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
	}
	if err := torpt.Run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "snowfall-client:", err)
		os.Exit(1)
	}
}
