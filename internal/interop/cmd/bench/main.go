// Command bench measures whole Snowflake chains on this machine: Snowfall's
// client and proxy, and Tor's Snowflake 2.5.1 client and proxy as Debian
// packages them, each through Snowfall's broker and bridge, in the same run
// so that the two can be compared under the same load.
//
// For each chain it moves one stream of -size MB down (bridge to client) and
// one up, then runs -echo sequential small round trips, checking every byte
// by hash. It reads the CPU time of every component process from /proc
// before and after each phase and reports throughput, round-trip times and
// CPU milliseconds per megabyte, to stdout, to a generated section of a
// Markdown file (-out) and as JSON (-json). See doc/performance.md for the
// method. It needs root (network namespaces); `make bench` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/snowfall-pt/snowfall/internal/interop"
)

func main() {
	os.Exit(run())
}

type options struct {
	size         int64
	echoes       int
	echoSize     int
	chains       []chainSpec
	rounds       int
	out          string
	jsonOut      string
	dir          string
	timeout      time.Duration
	phaseTimeout time.Duration
	profile      bool
}

func parseFlags() (options, error) {
	var o options
	sizeMB := flag.Int("size", 100, "megabytes (10^6 bytes) to move in each direction per round")
	flag.IntVar(&o.echoes, "echo", 200, "sequential echo round trips per round")
	flag.IntVar(&o.echoSize, "echo-size", 64, "bytes per echo message")
	chains := flag.String("chains", "snowfall,debian",
		"comma-separated chains to measure: snowfall, debian (Tor's 2.5.1), or CLIENT/PROXY such as snowfall/debian; "+
			"@DIR takes that chain's Snowfall programs (broker and bridge too) from DIR instead of $SNOWFALL_BIN, to compare builds")
	flag.IntVar(&o.rounds, "rounds", 1, "rounds; each round measures every chain, in alternating order")
	flag.StringVar(&o.out, "out", "", "Markdown file whose generated section receives the results (empty: none)")
	flag.StringVar(&o.jsonOut, "json", "", "write the results as JSON to this file (- for stdout)")
	flag.StringVar(&o.dir, "dir", "", "directory for logs (default: a new one under the temporary directory)")
	flag.DurationVar(&o.timeout, "timeout", 8*time.Minute, "give up on the whole run after this long (a default run takes 2 to 5 minutes)")
	flag.DurationVar(&o.phaseTimeout, "phase-timeout", 2*time.Minute, "give up on one phase (connection setup included) after this long")
	flag.BoolVar(&o.profile, "profile", false,
		"record perf(1) CPU profiles of the client, proxy and bridge during transfers (perturbs the CPU figures; -out is not written)")
	flag.Parse()
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *sizeMB < 1 || *sizeMB > 10000 {
		return o, errors.New("-size must be between 1 and 10000")
	}
	o.size = int64(*sizeMB) * 1_000_000
	if o.echoes < 1 || o.echoes > 100000 {
		return o, errors.New("-echo must be between 1 and 100000")
	}
	if o.echoSize < 1 || o.echoSize > 16384 {
		return o, errors.New("-echo-size must be between 1 and 16384")
	}
	if o.rounds < 1 || o.rounds > 20 {
		return o, errors.New("-rounds must be between 1 and 20")
	}
	if o.timeout <= 0 || o.phaseTimeout <= 0 {
		return o, errors.New("-timeout and -phase-timeout must be positive")
	}
	var err error
	if o.chains, err = parseChains(*chains); err != nil {
		return o, err
	}
	return o, nil
}

func run() int {
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: needs root to create network namespaces")
		return 1
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "snowfall-bench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		o.dir = d
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	rep, err := measure(ctx, o)
	fmt.Printf("\nLogs: %s\n", o.dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nbench: FAILED: %v\n", err)
		return 1
	}
	fmt.Println()
	printText(os.Stdout, rep)
	if o.jsonOut != "" {
		if err := writeJSON(o.jsonOut, rep); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	if o.out != "" {
		if o.profile {
			fmt.Printf("\n%s not written: profiled runs have perturbed CPU figures\n", o.out)
		} else {
			if err := updateMarkdown(o.out, rep); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
				return 1
			}
			fmt.Printf("\nResults written to %s\n", o.out)
		}
	}
	return 0
}

// chainSpec names the implementations of the client and the proxy, and
// optionally another directory of Snowfall programs (for comparing two
// builds in one run).
type chainSpec struct {
	Client, Proxy string
	BinDir        string
}

func (s chainSpec) label() string {
	l := implLabel(s.Client)
	if s.Client != s.Proxy {
		l += " client + " + implLabel(s.Proxy) + " proxy"
	}
	if s.BinDir != "" {
		l += " @ " + s.BinDir
	}
	return l
}

// slug is the label as a file-name-safe word.
func (s chainSpec) slug() string {
	w := s.Client
	if s.Client != s.Proxy {
		w += "-" + s.Proxy
	}
	if s.BinDir != "" {
		w += "-" + strings.Trim(strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
				return r
			}
			return '-'
		}, s.BinDir), "-")
	}
	return w
}

func implLabel(impl string) string {
	if impl == interop.Debian {
		return "Snowflake 2.5.1"
	}
	return "Snowfall"
}

func parseChains(s string) ([]chainSpec, error) {
	var out []chainSpec
	seen := make(map[chainSpec]bool)
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		f, dir, _ := strings.Cut(f, "@")
		cl, px, pair := strings.Cut(f, "/")
		if !pair {
			px = cl
		}
		for _, impl := range []string{cl, px} {
			if impl != interop.Snowfall && impl != interop.Debian {
				return nil, fmt.Errorf("-chains: unknown implementation %q (want %s or %s)", impl, interop.Snowfall, interop.Debian)
			}
		}
		spec := chainSpec{Client: cl, Proxy: px, BinDir: dir}
		if seen[spec] {
			return nil, fmt.Errorf("-chains: %s listed twice", f)
		}
		seen[spec] = true
		out = append(out, spec)
	}
	if len(out) == 0 {
		return nil, errors.New("-chains: no chain")
	}
	return out, nil
}
