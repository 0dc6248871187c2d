// Command snowfall-server is the bridge side of the Snowfall pluggable
// transport, a drop-in replacement for Tor's snowflake-server. Tor runs it as
// a managed server transport (ServerTransportPlugin snowflake exec ...); it
// accepts WebSockets from Snowflake proxies and connects every client stream
// to tor's Extended ORPort, or its ORPort. See doc/bridge.md; the work is
// done by package server/torpt.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/snowfall-pt/snowfall/internal/gctune"
	"github.com/snowfall-pt/snowfall/internal/version"
	"github.com/snowfall-pt/snowfall/server/torpt"
)

func main() {
	gctune.Apply()
	o, err := torpt.ParseFlags(os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "snowfall-server:", err)
		os.Exit(2)
	case o.ShowVersion:
		fmt.Println(torpt.Implementation, version.String())
		os.Exit(0)
	}
	os.Exit(torpt.Run(o))
}
