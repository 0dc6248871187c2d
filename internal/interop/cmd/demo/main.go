// Command demo starts a complete Snowflake chain on a private testbed
// network (Snowfall's broker and bridge; Tor's released client and proxy),
// moves checked data through it in both directions, prints a short report,
// and cleans up. It needs root (network namespaces). `make demo` runs it
// with SNOWFALL_BIN pointing at freshly built programs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/snowfall-pt/snowfall/internal/interop"
	"github.com/snowfall-pt/snowfall/internal/testbed"
)

func main() {
	os.Exit(run())
}

func run() int {
	sizeMB := flag.Int("size", 20, "megabytes (10^6 bytes) to move in each direction")
	dir := flag.String("dir", "", "directory for logs (default: a new one under the temporary directory)")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	var cfg interop.Config
	flag.StringVar(&cfg.Client, "client", interop.Snowfall, "client: snowfall, debian (Tor's snowflake-client 2.5.1) or upstream (Tor's current release)")
	flag.StringVar(&cfg.Proxy, "proxy", interop.Snowfall, "proxy: snowfall, debian (Tor's snowflake-proxy 2.5.1) or upstream (Tor's current release)")
	flag.StringVar(&cfg.Broker, "broker", interop.Snowfall, "broker: snowfall or upstream (Tor's current release)")
	flag.StringVar(&cfg.Bridge, "bridge", interop.Snowfall, "bridge server: snowfall or upstream (Tor's current release)")
	flag.Parse()
	for role, impl := range map[string]string{"client": cfg.Client, "proxy": cfg.Proxy, "broker": cfg.Broker, "bridge": cfg.Bridge} {
		if !slices.Contains(interop.Roles[role], impl) {
			fmt.Fprintf(os.Stderr, "demo: no %s implementation %q (want one of %v)\n", role, impl, interop.Roles[role])
			return 2
		}
	}
	if *sizeMB < 1 || *sizeMB > 10000 {
		fmt.Fprintln(os.Stderr, "demo: -size must be between 1 and 10000")
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: needs root to create network namespaces")
		return 1
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "snowfall-demo-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
		*dir = d
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	cfg.Dir = *dir
	ok := demo(ctx, cfg, int64(*sizeMB)*1_000_000)
	fmt.Printf("\nLogs: %s\n", *dir)
	if !ok {
		fmt.Println("RESULT: FAIL")
		return 1
	}
	fmt.Println("RESULT: OK")
	return 0
}

func demo(ctx context.Context, cfg interop.Config, size int64) bool {
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Printf("[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	bins, err := testbed.NewBinaries()
	if err != nil {
		say("error: %v", err)
		return false
	}
	defer bins.Close()
	if os.Getenv(testbed.BinEnv) == "" {
		say("%s is not set: building Snowfall's programs…", testbed.BinEnv)
	}

	if slices.Contains([]string{cfg.Client, cfg.Proxy, cfg.Broker, cfg.Bridge}, interop.Upstream) {
		say("building Tor's current Snowflake programs (cached after the first time)…")
		if cfg.Tor, err = interop.BuildTor(ctx); err != nil {
			say("error: %v", err)
			return false
		}
	}
	say("starting the chain: %s → %s → %s / %s → target",
		implName(cfg.Client, "client"), implName(cfg.Proxy, "proxy"), implName(cfg.Broker, "broker"), implName(cfg.Bridge, "server"))
	cfg.Bins = bins
	cfg.Logf = func(format string, args ...any) { say(format, args...) }
	c, err := interop.Start(ctx, cfg)
	if err != nil {
		say("error: %v", err)
		return false
	}
	defer func() {
		c.Close()
		say("stopped everything and removed the namespaces")
	}()

	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tPROGRAM\tVERSION\tPID\tNAMESPACE\tADDRESS")
	for _, comp := range c.Components {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", comp.Role, filepath.Base(comp.Program), comp.Version, comp.PID, comp.NS, comp.Addr)
	}
	tw.Flush()
	fmt.Println()

	ok := true
	for i, dirn := range []string{"download", "upload"} {
		say("%s: %d bytes through the chain…", dirn, size)
		tctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		dialStart := time.Now()
		conn, err := c.Dial(tctx)
		if err == nil {
			say("%s: SOCKS connection through a new proxy session open after %.1fs", dirn, time.Since(dialStart).Seconds())
		}
		var tr testbed.Transfer
		if err == nil {
			if dirn == "download" {
				tr, err = testbed.Download(tctx, conn, size, uint64(i+1))
			} else {
				tr, err = testbed.Upload(tctx, conn, size, uint64(i+1))
			}
		}
		cancel()
		if err != nil {
			say("%s FAILED: %v", dirn, err)
			if aerr := c.CheckAlive(); aerr != nil {
				say("%v", aerr)
			}
			ok = false
			break
		}
		say("%v", tr)
	}
	if ok {
		say("the client's log says: %s", natLine(c.ClientLog))
	}

	fmt.Println("\nLog files:")
	for _, comp := range c.Components {
		for _, l := range comp.Logs {
			fmt.Printf("  %-8s %s\n", comp.Role, l)
		}
	}
	return ok
}

// implName names the program that plays role for a -client/-proxy/...
// value.
func implName(impl, role string) string {
	switch impl {
	case interop.Debian:
		return "Tor's snowflake-" + role + " 2.5.1"
	case interop.Upstream:
		return "Tor's current snowflake-" + role
	}
	return "snowfall-" + role
}

// natLine finds the NAT type the client learned from the STUN server.
func natLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		// Tor's client writes "NAT Type: x"; ours logs msg="NAT type" nat=x.
		if i := strings.Index(line, "NAT Type:"); i >= 0 {
			return line[i:]
		}
		if strings.Contains(line, `msg="NAT type"`) {
			if i := strings.Index(line, "nat="); i >= 0 {
				return "NAT type: " + line[i+len("nat="):]
			}
		}
	}
	return "(no NAT type line)"
}
