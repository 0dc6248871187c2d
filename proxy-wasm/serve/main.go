//go:build !js

// Command serve serves the browser proxy (proxy-wasm/dist) for trying it
// locally:
//
//	go run ./proxy-wasm/serve -build
//
// then open http://127.0.0.1:8000/. Flags such as -broker and -relay write
// a config.json for the page, so it can use a test broker and bridge.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8000", "address to listen on")
	dir := fs.String("dir", "", "folder to serve (default proxy-wasm/dist of this module)")
	build := fs.Bool("build", false, "build the folder first (proxy-wasm/build.sh)")
	var (
		broker, relay, pattern, stun, probe, forceNAT, proxyType, poll string
		nonTLS, private, keepLocal, debug, unsafeLog, queryOverrides   bool
		capacity                                                       int
	)
	fs.StringVar(&broker, "broker", "", "broker URL for the page")
	fs.StringVar(&relay, "relay", "", "default relay (bridge) WebSocket URL")
	fs.StringVar(&pattern, "relay-pattern", "", "allowed relay hostname pattern")
	fs.StringVar(&stun, "stun", "", "STUN servers, comma-separated")
	fs.StringVar(&probe, "nat-probe", "", "NAT probe URL")
	fs.StringVar(&forceNAT, "force-nat", "", "skip the NAT probe and report this type")
	fs.StringVar(&proxyType, "proxy-type", "", "proxy type reported to the broker (badge or webext)")
	fs.StringVar(&poll, "poll-interval", "", "poll interval (e.g. 60s; at least 2s)")
	fs.IntVar(&capacity, "capacity", 0, "clients at once (0: 1, or 2 when unrestricted)")
	fs.BoolVar(&nonTLS, "allow-non-tls-relay", false, "allow ws:// relays")
	fs.BoolVar(&private, "allow-private-relay", false, "allow relays on private addresses")
	fs.BoolVar(&keepLocal, "keep-local-addresses", false, "keep local-network ICE candidates")
	fs.BoolVar(&debug, "debug", false, "debug logging in the browser console")
	fs.BoolVar(&unsafeLog, "unsafe-logging", false, "keep IP addresses in the browser console")
	fs.BoolVar(&queryOverrides, "allow-query-overrides", false, "let the page's query string change settings")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return fmt.Errorf("%w (give -dir)", err)
		}
		*dir = filepath.Join(root, "proxy-wasm", "dist")
	}
	if *build {
		script := filepath.Join(filepath.Dir(*dir), "build.sh")
		if root, err := moduleRoot(); err == nil {
			script = filepath.Join(root, "proxy-wasm", "build.sh")
		}
		cmd := exec.Command(script, *dir)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(*dir, "snowfall.wasm")); err != nil {
		return fmt.Errorf("%s has no snowfall.wasm: run \"make wasm\" or give -build", *dir)
	}

	over := map[string]any{}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "broker":
			over["broker"] = broker
		case "relay":
			over["relay"] = relay
		case "relay-pattern":
			over["relayPattern"] = pattern
		case "stun":
			list := []string{}
			for _, s := range strings.Split(stun, ",") {
				if s = strings.TrimSpace(s); s != "" {
					list = append(list, s)
				}
			}
			over["stun"] = list
		case "nat-probe":
			over["natProbe"] = probe
		case "force-nat":
			over["forceNAT"] = forceNAT
		case "proxy-type":
			over["proxyType"] = proxyType
		case "poll-interval":
			over["pollInterval"] = poll
		case "capacity":
			over["capacity"] = capacity
		case "allow-non-tls-relay":
			over["allowNonTLSRelay"] = nonTLS
		case "allow-private-relay":
			over["allowPrivateRelay"] = private
		case "keep-local-addresses":
			over["keepLocalAddresses"] = keepLocal
		case "debug":
			over["debug"] = debug
		case "unsafe-logging":
			over["unsafeLogging"] = unsafeLog
		case "allow-query-overrides":
			over["allowQueryOverrides"] = queryOverrides
		}
	})
	var config []byte
	plain := nonTLS || strings.HasPrefix(broker, "http:") || strings.HasPrefix(probe, "http:") || queryOverrides
	if len(over) > 0 {
		base, err := os.ReadFile(filepath.Join(*dir, "config.json"))
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		if config, err = mergeConfig(base, over); err != nil {
			return err
		}
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newHandler(*dir, config, plain),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("serving the browser proxy", "dir", *dir, "url", "http://"+ln.Addr().String()+"/")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// moduleRoot is the directory of the enclosing Go module.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the snowfall module")
	}
	return filepath.Dir(mod), nil
}
