package testbed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Arg is one key=value argument of a bridge line.
type Arg struct{ Key, Value string }

// EncodeArgs joins bridge-line arguments the way tor passes them to a
// client PT over SOCKS (pt-spec §3.5): "k=v;k=v" with '\\', '=' and ';'
// escaped by a backslash.
func EncodeArgs(args []Arg) string {
	esc := strings.NewReplacer(`\`, `\\`, `=`, `\=`, `;`, `\;`)
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = esc.Replace(a.Key) + "=" + esc.Replace(a.Value)
	}
	return strings.Join(parts, ";")
}

// socksAuth splits encoded arguments into a SOCKS5 username and password:
// the first 255 bytes, and the rest (a single NUL when there is none, since
// RFC 1929 forbids an empty password).
func socksAuth(encoded string) (user, pass string) {
	if len(encoded) <= 255 {
		return encoded, "\x00"
	}
	return encoded[:255], encoded[255:]
}

// DialSOCKS5 opens a connection to dest through the SOCKS5 server at socks,
// from inside ns (nil: the caller's namespace), passing args (may be nil)
// by username/password authentication as tor does for PTs.
func DialSOCKS5(ctx context.Context, ns *Namespace, socks string, dest netip.AddrPort, args []Arg) (net.Conn, error) {
	if err := checkLiteral(socks); err != nil {
		return nil, err
	}
	c, err := ns.Dial(ctx, "tcp", socks)
	if err != nil {
		return nil, fmt.Errorf("testbed: SOCKS dial %s: %w", socks, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := closeOnDone(ctx, c)
	err = socksHandshake(c, dest, args)
	stop()
	c.SetDeadline(time.Time{})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("testbed: SOCKS to %s via %s: %w", dest, socks, ctxErr(ctx, err))
	}
	return c, nil
}

func socksHandshake(c net.Conn, dest netip.AddrPort, args []Arg) error {
	method := byte(0x00)
	if len(args) > 0 {
		method = 0x02
	}
	if _, err := c.Write([]byte{5, 1, method}); err != nil {
		return err
	}
	var rep [2]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		return err
	}
	if rep[0] != 5 || rep[1] != method {
		return fmt.Errorf("server chose method %#x, want %#x", rep[1], method)
	}
	if method == 0x02 {
		user, pass := socksAuth(EncodeArgs(args))
		if len(pass) > 255 {
			return errors.New("bridge arguments longer than 510 bytes")
		}
		msg := []byte{1, byte(len(user))}
		msg = append(msg, user...)
		msg = append(msg, byte(len(pass)))
		msg = append(msg, pass...)
		if _, err := c.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, rep[:]); err != nil {
			return err
		}
		if rep[1] != 0 {
			return fmt.Errorf("authentication refused (status %d)", rep[1])
		}
	}
	req := []byte{5, 1, 0}
	if dest.Addr().Is4() {
		req = append(req, 1)
	} else {
		req = append(req, 4)
	}
	req = append(req, dest.Addr().AsSlice()...)
	req = binary.BigEndian.AppendUint16(req, dest.Port())
	if _, err := c.Write(req); err != nil {
		return err
	}
	var head [4]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return err
	}
	if head[1] != 0 {
		return fmt.Errorf("connect refused (reply %d)", head[1])
	}
	var skip int
	switch head[3] {
	case 1:
		skip = 4
	case 4:
		skip = 16
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return err
		}
		skip = int(l[0])
	default:
		return fmt.Errorf("bad address type %d in reply", head[3])
	}
	_, err := io.ReadFull(c, make([]byte, skip+2))
	return err
}

// PTClientConfig describes a client pluggable transport run as tor would
// run it (pt-spec managed-proxy mode).
type PTClientConfig struct {
	Name, Path string
	Args       []string
	NS         *Namespace
	LogDir     string
	// StateDir is TOR_PT_STATE_LOCATION; empty means LogDir/<Name>-state.
	StateDir string
	// Transport is the method name asked for ("snowflake").
	Transport string
	// ExtraEnv is added to the PT environment.
	ExtraEnv []string
}

// PTClient is a running client PT and its SOCKS address.
type PTClient struct {
	*Process
	NS *Namespace
	// SOCKSAddr is where the PT accepts SOCKS5 (inside NS).
	SOCKSAddr string
}

// StartPTClient runs a client PT and waits for its CMETHOD line.
func StartPTClient(ctx context.Context, cfg PTClientConfig) (*PTClient, error) {
	state := cfg.StateDir
	if state == "" {
		state = cfg.LogDir + "/" + cfg.Name + "-state"
	}
	env := append([]string{
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_CLIENT_TRANSPORTS=" + cfg.Transport,
		"TOR_PT_STATE_LOCATION=" + state,
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
	}, cfg.ExtraEnv...)
	p, err := StartProcess(ProcessConfig{
		Name: cfg.Name, NS: cfg.NS, Path: cfg.Path, Args: cfg.Args,
		Env: env, LogDir: cfg.LogDir, Stdin: true,
	})
	if err != nil {
		return nil, err
	}
	var socks string
	_, err = p.WaitStdout(ctx, func(line string) bool {
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && f[0] == "CMETHOD" && f[1] == cfg.Transport && f[2] == "socks5":
			socks = f[3]
		case len(f) >= 1 && (f[0] == "CMETHOD-ERROR" || f[0] == "ENV-ERROR" || f[0] == "VERSION-ERROR" || f[0] == "PROXY-ERROR"):
			return true
		case len(f) == 2 && f[0] == "CMETHODS" && f[1] == "DONE":
			return true
		}
		return false
	})
	if err == nil && socks == "" {
		err = fmt.Errorf("testbed: %s offered no %s SOCKS5 method: %q", cfg.Name, cfg.Transport, p.StdoutLines())
	}
	if err != nil {
		p.Stop(2 * time.Second)
		return nil, err
	}
	return &PTClient{Process: p, NS: cfg.NS, SOCKSAddr: socks}, nil
}

// Dial opens a stream through the PT to dest with bridge-line arguments.
func (c *PTClient) Dial(ctx context.Context, dest netip.AddrPort, args []Arg) (net.Conn, error) {
	return DialSOCKS5(ctx, c.NS, c.SOCKSAddr, dest, args)
}

// PTServerConfig describes a server pluggable transport run as tor would
// run it.
type PTServerConfig struct {
	Name, Path string
	Args       []string
	NS         *Namespace
	LogDir     string
	StateDir   string
	Transport  string
	// BindAddr is the listening address (TOR_PT_SERVER_BINDADDR).
	BindAddr string
	// ORPort is the plain TCP address to forward to (TOR_PT_ORPORT).
	ORPort string
	// ExtORPort and AuthCookieFile, when set, select the Extended ORPort.
	ExtORPort, AuthCookieFile string
	// Options is TOR_PT_SERVER_TRANSPORT_OPTIONS ("snowflake:k=v;...").
	Options  string
	ExtraEnv []string
}

// Env is the environment tor would give the server PT.
func (cfg PTServerConfig) Env(state string) []string {
	env := []string{
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_SERVER_TRANSPORTS=" + cfg.Transport,
		"TOR_PT_SERVER_BINDADDR=" + cfg.Transport + "-" + cfg.BindAddr,
		"TOR_PT_ORPORT=" + cfg.ORPort,
		"TOR_PT_STATE_LOCATION=" + state,
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
	}
	if cfg.ExtORPort != "" {
		env = append(env, "TOR_PT_EXTENDED_SERVER_PORT="+cfg.ExtORPort, "TOR_PT_AUTH_COOKIE_FILE="+cfg.AuthCookieFile)
	}
	if cfg.Options != "" {
		env = append(env, "TOR_PT_SERVER_TRANSPORT_OPTIONS="+cfg.Options)
	}
	return append(env, cfg.ExtraEnv...)
}

// PTServer is a running server PT.
type PTServer struct {
	*Process
	// Addr and MethodArgs are the address and ARGS of the SMETHOD line.
	Addr, MethodArgs string
}

// StartPTServer runs a server PT and waits for SMETHODS DONE.
func StartPTServer(ctx context.Context, cfg PTServerConfig) (*PTServer, error) {
	state := cfg.StateDir
	if state == "" {
		state = cfg.LogDir + "/" + cfg.Name + "-state"
	}
	p, err := StartProcess(ProcessConfig{
		Name: cfg.Name, NS: cfg.NS, Path: cfg.Path, Args: cfg.Args,
		Env: cfg.Env(state), LogDir: cfg.LogDir, Stdin: true,
	})
	if err != nil {
		return nil, err
	}
	s := &PTServer{Process: p}
	_, err = p.WaitStdout(ctx, func(line string) bool {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "SMETHOD" && f[1] == cfg.Transport:
			s.Addr = f[2]
			if len(f) >= 4 {
				s.MethodArgs = strings.Join(f[3:], " ")
			}
		case len(f) >= 1 && (f[0] == "SMETHOD-ERROR" || f[0] == "ENV-ERROR" || f[0] == "VERSION-ERROR"):
			return true
		case len(f) == 2 && f[0] == "SMETHODS" && f[1] == "DONE":
			return true
		}
		return false
	})
	if err == nil && s.Addr == "" {
		err = fmt.Errorf("testbed: %s offered no %s method: %q", cfg.Name, cfg.Transport, p.StdoutLines())
	}
	if err != nil {
		p.Stop(2 * time.Second)
		return nil, err
	}
	return s, nil
}
