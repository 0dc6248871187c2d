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
	client := flag.String("client", interop.Snowfall, "client implementation: snowfall or debian (Tor's snowflake-client 2.5.1)")
	proxy := flag.String("proxy", interop.Snowfall, "proxy implementation: snowfall or debian (Tor's snowflake-proxy 2.5.1)")
	flag.Parse()
	for _, impl := range []string{*client, *proxy} {
		if impl != interop.Snowfall && impl != interop.Debian {
			fmt.Fprintf(os.Stderr, "demo: unknown implementation %q (want %s or %s)\n", impl, interop.Snowfall, interop.Debian)
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

	ok := demo(ctx, *dir, int64(*sizeMB)*1_000_000, *client, *proxy)
	fmt.Printf("\nLogs: %s\n", *dir)
	if !ok {
		fmt.Println("RESULT: FAIL")
		return 1
	}
	fmt.Println("RESULT: OK")
	return 0
}

func demo(ctx context.Context, dir string, size int64, client, proxy string) bool {
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

	say("starting the chain: %s → %s → snowfall-broker / snowfall-server → target",
		implName(client, "client"), implName(proxy, "proxy"))
	c, err := interop.Start(ctx, interop.Config{
		Dir: dir, Bins: bins, Client: client, Proxy: proxy,
		Logf: func(format string, args ...any) { say(format, args...) },
	})
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

// implName names the program that plays role for a -client/-proxy value.
func implName(impl, role string) string {
	if impl == interop.Debian {
		return "Tor's snowflake-" + role + " 2.5.1"
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
