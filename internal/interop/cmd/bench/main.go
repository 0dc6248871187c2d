// Command bench measures whole Snowflake chains on this machine: Snowfall's
// client and proxy, and Tor's Snowflake client and proxy (2.5.1 as Debian
// packages them), each through Snowfall's broker and bridge, in the same
// run so that they can be compared under the same load.
//
// It measures a grid: every chain on every link profile (-links: clean, 2 %
// and 5 % loss, 80 ms RTT with 1 % loss, a 20 Mbit/s limit), made on the
// client↔proxy UDP path by the testbed's user-space shaper. For each cell
// it moves one stream down (bridge to client) and one up, with small echoes
// on a second stream beside each transfer (round trips under load), then
// runs -echo sequential small round trips on an idle stream, checking every
// byte by hash. It reads the CPU time of every component process from /proc
// before and after each phase and reports throughput, round-trip times, CPU
// milliseconds per megabyte and peak RSS, to stdout, to a generated section
// of a Markdown file (-out), as a throughput-against-loss plot (-plot, SVG)
// and as JSON (-json). See doc/performance.md for the method. It needs root
// (network namespaces); `make bench` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/snowfall-pt/snowfall/internal/interop"
	"github.com/snowfall-pt/snowfall/internal/testbed"
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
	links        []linkProfile
	quick        bool
	plot         string
}

func parseFlags() (options, error) {
	var o options
	sizeMB := flag.Int("size", 100, "megabytes (10^6 bytes) to move in each direction per round on the clean link; "+
		"impaired links move a fixed fraction of it (see doc/performance.md)")
	flag.IntVar(&o.echoes, "echo", 200, "sequential echo round trips per round")
	links := flag.String("links", strings.Join(linkNames(), ","),
		"comma-separated link profiles of the grid, shaped on the client↔proxy UDP path: "+strings.Join(linkNames(), ", "))
	flag.BoolVar(&o.quick, "quick", false, "quick grid: -size 20 and -echo 50 unless given, and half-size transfers on the impaired links")
	flag.StringVar(&o.plot, "plot", "", "write the throughput-against-loss plot (SVG) here (default: performance-loss.svg beside -out)")
	flag.IntVar(&o.echoSize, "echo-size", 64, "bytes per echo message")
	chains := flag.String("chains", "snowfall,debian,upstream",
		"comma-separated chains to measure: "+implList()+", or CLIENT/PROXY such as snowfall/debian; "+
			"@DIR takes that chain's Snowfall programs (broker and bridge too) from DIR instead of $SNOWFALL_BIN, to compare builds")
	flag.IntVar(&o.rounds, "rounds", 1, "rounds; each round measures every chain, in alternating order")
	flag.StringVar(&o.out, "out", "", "Markdown file whose generated section receives the results (empty: none)")
	flag.StringVar(&o.jsonOut, "json", "", "write the results as JSON to this file (- for stdout)")
	flag.StringVar(&o.dir, "dir", "", "directory for logs (default: a new one under the temporary directory)")
	flag.DurationVar(&o.timeout, "timeout", 45*time.Minute, "give up on the whole run after this long (a full grid of two chains took 12 to 15 minutes on a loaded 2-core machine, -quick about 9)")
	flag.DurationVar(&o.phaseTimeout, "phase-timeout", 4*time.Minute, "give up on one phase (connection setup included) after this long")
	flag.BoolVar(&o.profile, "profile", false,
		"record perf(1) CPU profiles of the client, proxy and bridge during transfers (perturbs the CPU figures; -out is not written)")
	flag.Parse()
	if o.quick {
		given := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
		if !given["size"] {
			*sizeMB = 20
		}
		if !given["echo"] {
			o.echoes = 50
		}
	}
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
	if o.links, err = parseLinks(*links); err != nil {
		return o, err
	}
	if o.plot == "" && o.out != "" {
		o.plot = filepath.Join(filepath.Dir(o.out), "performance-loss.svg")
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

	// A slow chain on a lossy link may need more than the default minute
	// between its last upload byte and the target's verdict; the phase
	// timeout still bounds every phase.
	testbed.IdleTimeout = o.phaseTimeout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	rep, err := measure(ctx, o)
	if rep != nil && o.plot != "" && o.out != "" {
		if rel, err := filepath.Rel(filepath.Dir(o.out), o.plot); err == nil {
			rep.Plot = rel
		}
	}
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
	if o.plot != "" && !o.profile {
		written, err := writePlot(o.plot, rep)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		if written {
			fmt.Printf("\nPlot written to %s\n", o.plot)
		} else {
			rep.Plot = ""
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

// implementations names each implementation a chain role can take, as
// the report labels it. Another implementation the harness can start
// (interop.Start) is one more line here.
var implementations = map[string]string{
	interop.Snowfall: "Snowfall",
	interop.Debian:   "Snowflake 2.5.1",
	interop.Upstream: "Snowflake 2.14.1",
}

// implOrder lists implementations for help texts, ours first.
func implOrder() []string {
	keys := make([]string, 0, len(implementations))
	for k := range implementations {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		switch {
		case a == interop.Snowfall:
			return -1
		case b == interop.Snowfall:
			return 1
		}
		return strings.Compare(a, b)
	})
	return keys
}

func implList() string {
	var parts []string
	for _, k := range implOrder() {
		parts = append(parts, fmt.Sprintf("%s (%s)", k, implementations[k]))
	}
	return strings.Join(parts, ", ")
}

func implLabel(impl string) string {
	if l, ok := implementations[impl]; ok {
		return l
	}
	return impl
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
			if _, ok := implementations[impl]; !ok {
				return nil, fmt.Errorf("-chains: unknown implementation %q (want one of %s)", impl, strings.Join(implOrder(), ", "))
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
