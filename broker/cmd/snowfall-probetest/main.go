// Command snowfall-probetest is the NAT probe service that proxies query to
// learn their NAT type. Deploy it behind a symmetric NAT; see
// doc/probetest.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/snowfall-pt/snowfall/broker/probetest"
	"github.com/snowfall-pt/snowfall/internal/acmecert"
	"github.com/snowfall-pt/snowfall/internal/safelog"
	"github.com/snowfall-pt/snowfall/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	addr          string
	acmeHosts     string
	acmeEmail     string
	acmeCache     string
	cert, key     string
	disableTLS    bool
	unsafeLogging bool
	stun          string
	keepLocal     bool
	verbose       bool
	showVersion   bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("snowfall-probetest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", ":8443", "address to listen on")
	fs.StringVar(&o.acmeHosts, "acme-hostnames", "", "comma-separated hostnames for an automatic Let's Encrypt certificate (needs port 80)")
	fs.StringVar(&o.acmeEmail, "acme-email", "", "contact e-mail for Let's Encrypt")
	fs.StringVar(&o.acmeCache, "acme-cert-cache", "acme-cert-cache", "directory for ACME certificates")
	fs.StringVar(&o.cert, "cert", "", "TLS certificate file (with -key)")
	fs.StringVar(&o.key, "key", "", "TLS private key file (with -cert)")
	fs.BoolVar(&o.disableTLS, "disable-tls", false, "serve plain HTTP (behind a TLS-terminating front, or for tests)")
	fs.BoolVar(&o.unsafeLogging, "unsafe-logging", false, "keep IP addresses in the log")
	fs.StringVar(&o.stun, "stun", "stun:stun.l.google.com:19302", "STUN servers, comma-separated (empty for none)")
	fs.BoolVar(&o.keepLocal, "keep-local-addresses", false, "keep local-network candidates in answers (tests)")
	fs.BoolVar(&o.verbose, "verbose", false, "debug logging")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	acme := o.acmeHosts != ""
	files := o.cert != "" || o.key != ""
	n := 0
	for _, b := range []bool{acme, files, o.disableTLS} {
		if b {
			n++
		}
	}
	switch {
	case n != 1:
		return nil, errors.New("choose exactly one of -acme-hostnames, -cert/-key, -disable-tls")
	case files && (o.cert == "" || o.key == ""):
		return nil, errors.New("-cert and -key go together")
	case !acme && (o.acmeEmail != ""):
		return nil, errors.New("-acme-email needs -acme-hostnames")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "snowfall-probetest: %v\n", err)
		return 2
	}
	if o.showVersion {
		fmt.Fprintf(stdout, "snowfall-probetest %s\n", version.String())
		return 0
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := safelog.NewLogger(stderr, level, o.unsafeLogging)

	h := probetest.NewHandler(probetest.Config{
		STUNURLs:           splitList(o.stun),
		KeepLocalAddresses: o.keepLocal,
		Logger:             log,
	})
	defer h.Close()
	mux := http.NewServeMux()
	mux.Handle("/probe", h)
	mux.HandleFunc("/robots.txt", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "User-agent: *\nDisallow: /\n")
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// An answer waits up to probetest.GatherTimeout for ICE.
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    60 * time.Second,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		log.Error("cannot listen", "addr", o.addr, "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	errc := make(chan error, 2)
	switch {
	case o.acmeHosts != "":
		certs, err := acmecert.New(acmecert.Config{
			Hostnames: acmecert.ParseHostnames(o.acmeHosts),
			Email:     o.acmeEmail,
			CacheDir:  o.acmeCache,
		})
		if err != nil {
			log.Error("ACME", "err", err)
			return 1
		}
		// Without HTTP-01, TLS-ALPN-01 works only if -addr is port 443.
		if err := certs.ServeHTTP01(ctx, ":80", log); err != nil {
			log.Warn("no ACME HTTP-01 responder", "err", err)
		}
		srv.TLSConfig = certs.TLSConfig("http/1.1")
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	case o.cert != "":
		go func() { errc <- srv.ServeTLS(ln, o.cert, o.key) }()
	default:
		go func() { errc <- srv.Serve(ln) }()
	}
	log.Info("snowfall-probetest "+version.String()+" listening", "addr", ln.Addr().String(), "tls", !o.disableTLS)
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("server failed", "err", err)
			return 1
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return 0
}
