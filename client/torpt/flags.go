// Package torpt runs snowfall-client as a Tor managed pluggable transport:
// it speaks the PT protocol on stdin/stdout with goptlib, accepts SOCKS5
// connections from tor, and turns each into a Snowflake session configured
// by the command line and that connection's bridge-line arguments.
package torpt

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/snowfall-pt/snowfall/client"
	"github.com/snowfall-pt/snowfall/client/utlsrt"
	"github.com/snowfall-pt/snowfall/internal/version"
)

// Options are the command-line settings of snowfall-client.
type Options struct {
	// Base is the configuration every SOCKS connection starts from, before
	// its bridge-line arguments are applied.
	Base client.Config
	// LogFile is where logs go ("" means nowhere); relative to the PT
	// state directory when LogToStateDir is set.
	LogFile       string
	LogToStateDir bool
	// UnsafeLogging disables address scrubbing.
	UnsafeLogging bool
	// ShowVersion prints the version and exits.
	ShowVersion bool
}

// ErrHelp is returned by ParseFlags for -h and -help.
var ErrHelp = flag.ErrHelp

// ParseFlags parses the command line (without the program name). Usage and
// errors are written to out.
func ParseFlags(args []string, out io.Writer) (*Options, error) {
	fs := flag.NewFlagSet("snowfall-client", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		o                        Options
		brokerURL, front, fronts string
		ampcache, ice            string
		keepLocal, keepLocalOld  bool
		toStateDir, toStateOld   bool
		max                      int
	)
	fs.StringVar(&brokerURL, "url", "", "URL of the Snowflake broker")
	fs.StringVar(&front, "front", "", "front domain(s) for the broker, comma separated")
	fs.StringVar(&fronts, "fronts", "", "comma-separated front domains, one picked at random per request (wins over -front)")
	fs.StringVar(&ampcache, "ampcache", "", "URL of an AMP cache to reach the broker through")
	fs.StringVar(&ice, "ice", "", "comma-separated list of ICE (STUN) server URLs")
	fs.StringVar(&o.LogFile, "log", "", "name of the log file (default: no log)")
	fs.BoolVar(&toStateDir, "log-to-state-dir", false, "resolve the log file relative to tor's PT state directory")
	fs.BoolVar(&toStateOld, "logToStateDir", false, "deprecated alias of -log-to-state-dir")
	fs.BoolVar(&keepLocal, "keep-local-addresses", false, "keep local LAN address ICE candidates")
	fs.BoolVar(&keepLocalOld, "keepLocalAddresses", false, "deprecated alias of -keep-local-addresses")
	fs.BoolVar(&o.UnsafeLogging, "unsafe-logging", false, "do not scrub IP addresses from logs")
	fs.IntVar(&max, "max", 1, "number of proxies to keep per connection")
	fs.BoolVar(&o.ShowVersion, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: snowfall-client [flags]\n\nA Tor pluggable transport client for Snowflake. Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.LogToStateDir = toStateDir || toStateOld
	o.Base = client.Config{
		BrokerURL:          brokerURL,
		Fronts:             client.SplitList(front),
		AMPCacheURL:        ampcache,
		ICEServers:         client.SplitList(ice),
		MaxPeers:           max,
		KeepLocalAddresses: keepLocal || keepLocalOld,
	}
	if f := client.SplitList(fronts); len(f) > 0 {
		o.Base.Fronts = f
	}
	return &o, nil
}

// VersionText is what -version prints.
func VersionText() string {
	return fmt.Sprintf("snowfall-client %s\nuTLS ClientHello names: %s\n",
		version.String(), strings.Join(utlsrt.Names(), " "))
}

// IsHelp reports whether err asks for the usage text only.
func IsHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }
