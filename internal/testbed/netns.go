package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Addresses of the testbed's hosts. The server namespace owns the bridge and
// both server addresses; more proxies take ProxyIP's neighbours (.21, .22…).
var (
	ServerIP  = netip.MustParseAddr("198.51.100.1")
	ServerIP2 = netip.MustParseAddr("198.51.100.2")
	ClientIP  = netip.MustParseAddr("198.51.100.10")
	ProxyIP   = netip.MustParseAddr("198.51.100.20")
)

// prefixLen is the length of the testbed's one subnet.
const prefixLen = 24

// ownerDir records which process owns which namespace prefix, so that a run
// killed before its cleanup can be swept by the next one.
const ownerDir = "/run/snowfall-testbed"

// Namespace is a network namespace created by this package.
type Namespace struct {
	// Name is the namespace's name under /run/netns.
	Name string
	// Addr is the host's primary address on the testbed network.
	Addr netip.Addr
}

// Do runs fn on an OS thread that has joined the namespace. Sockets created
// by fn stay in the namespace after Do returns. A nil namespace runs fn in
// the caller's namespace.
func (ns *Namespace) Do(fn func() error) error {
	if ns == nil {
		return fn()
	}
	return doIn(ns.Name, fn)
}

// Dial connects to addr (an IP literal with port) from inside the namespace.
func (ns *Namespace) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen opens a stream listener inside the namespace.
func (ns *Namespace) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := ns.Do(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// ListenPacket opens a packet socket inside the namespace.
func (ns *Namespace) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := ns.Do(func() error {
		var err error
		c, err = net.ListenPacket(network, addr)
		return err
	})
	return c, err
}

// DialIn connects to addr from inside the named namespace ("" for the
// caller's own). addr must be an IP literal: name resolution could move the
// socket's creation to another thread.
func DialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	if err := checkLiteral(addr); err != nil {
		return nil, err
	}
	if ns == "" {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return (&Namespace{Name: ns}).Dial(ctx, network, addr)
}

// ListenIn opens a stream listener inside the named namespace.
func ListenIn(ns, network, addr string) (net.Listener, error) {
	if ns == "" {
		return net.Listen(network, addr)
	}
	return (&Namespace{Name: ns}).Listen(network, addr)
}

// ListenPacketIn opens a packet socket inside the named namespace.
func ListenPacketIn(ns, network, addr string) (net.PacketConn, error) {
	if ns == "" {
		return net.ListenPacket(network, addr)
	}
	return (&Namespace{Name: ns}).ListenPacket(network, addr)
}

func checkLiteral(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("testbed: address %q: %w", addr, err)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("testbed: address %q is not an IP literal", addr)
	}
	return nil
}

// doIn runs fn on a fresh goroutine locked to its thread while that thread
// is in the namespace. If the thread cannot return to its original namespace
// it stays locked, and the runtime discards it when the goroutine ends.
func doIn(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("testbed: own namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", name))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("testbed: namespace %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("testbed: enter namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("testbed: leave namespace %s: %w", name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Network is a set of namespaces joined by a Linux bridge: a server
// namespace holding the bridge and the server addresses, and host namespaces
// each linked to the bridge by a veth pair. No namespace has a default route
// and each has a resolv.conf pointing at a resolver that does not exist, so
// name lookups fail at once and nothing leaves the machine.
type Network struct {
	// Prefix starts the name of every namespace of this network.
	Prefix string
	// Server owns the bridge, ServerIP and ServerIP2.
	Server *Namespace

	mu     sync.Mutex
	spaces []*Namespace
	closed bool
}

// NewNetwork creates the server namespace and its bridge. Namespaces left
// behind by earlier runs whose process has died are removed first.
func NewNetwork(ctx context.Context) (*Network, error) {
	sweepStale(ctx)
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	n := &Network{Prefix: "sfw" + hex.EncodeToString(b[:]) + "-"}
	if err := os.MkdirAll(ownerDir, 0o755); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	if err := os.WriteFile(filepath.Join(ownerDir, n.Prefix+"pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	srv, err := n.addNamespace(ctx, "srv")
	if err != nil {
		n.Close()
		return nil, err
	}
	srv.Addr = ServerIP
	n.Server = srv
	for _, args := range [][]string{
		{"link", "add", "br0", "type", "bridge"},
		{"addr", "add", prefixString(ServerIP), "dev", "br0"},
		{"addr", "add", prefixString(ServerIP2), "dev", "br0"},
		{"link", "set", "br0", "up"},
	} {
		if err := ipCmd(ctx, srv.Name, args...); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// AddHost creates a namespace named after role with addr on a veth linked to
// the bridge. role must be short (it names the bridge-side interface).
func (n *Network) AddHost(ctx context.Context, role string, addr netip.Addr) (*Namespace, error) {
	if len(role) > 12 || strings.ContainsAny(role, " /") {
		return nil, fmt.Errorf("testbed: bad host role %q", role)
	}
	ns, err := n.addNamespace(ctx, role)
	if err != nil {
		return nil, err
	}
	ns.Addr = addr
	peer := "v-" + role
	for _, c := range []struct {
		ns   string
		args []string
	}{
		{"", []string{"link", "add", "eth0", "netns", ns.Name, "type", "veth", "peer", "name", peer, "netns", n.Server.Name}},
		{n.Server.Name, []string{"link", "set", peer, "master", "br0", "up"}},
		{ns.Name, []string{"addr", "add", prefixString(addr), "dev", "eth0"}},
		{ns.Name, []string{"link", "set", "eth0", "up"}},
	} {
		if err := ipCmd(ctx, c.ns, c.args...); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// Namespaces lists the network's namespaces in creation order.
func (n *Network) Namespaces() []*Namespace {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Namespace(nil), n.spaces...)
}

func (n *Network) addNamespace(ctx context.Context, role string) (*Namespace, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, errors.New("testbed: network closed")
	}
	ns := &Namespace{Name: n.Prefix + role}
	n.spaces = append(n.spaces, ns)
	n.mu.Unlock()

	etc := filepath.Join("/etc/netns", ns.Name)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	// Nothing listens on 127.0.0.1:53 inside the namespace: lookups get a
	// port-unreachable and fail at once instead of timing out.
	resolv := "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte(resolv), 0o644); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	if err := run(ctx, "ip", "netns", "add", ns.Name); err != nil {
		return nil, err
	}
	if err := ipCmd(ctx, ns.Name, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	// IPv4 only: keeps ICE candidate lists short and the logs readable.
	err := ns.Do(func() error {
		for _, f := range []string{"all", "default"} {
			p := "/proc/sys/net/ipv6/conf/" + f + "/disable_ipv6"
			if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("testbed: disable IPv6 in %s: %w", ns.Name, err)
	}
	return ns, nil
}

// Close stops whatever still runs in the network's namespaces and deletes
// them. It is safe to call more than once.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	spaces := n.spaces
	n.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	// Hosts first: deleting the server namespace takes the bridge with it.
	for i := len(spaces) - 1; i >= 0; i-- {
		errs = append(errs, deleteNamespace(ctx, spaces[i].Name))
	}
	os.Remove(filepath.Join(ownerDir, n.Prefix+"pid"))
	return errors.Join(errs...)
}

func deleteNamespace(ctx context.Context, name string) error {
	killNamespacePIDs(ctx, name)
	err := run(ctx, "ip", "netns", "del", name)
	os.RemoveAll(filepath.Join("/etc/netns", name))
	if _, serr := os.Stat(filepath.Join("/run/netns", name)); errors.Is(serr, os.ErrNotExist) {
		return nil
	}
	return err
}

// killNamespacePIDs stops processes left in a namespace, by PID: SIGTERM,
// then SIGKILL for those still there after a grace period.
func killNamespacePIDs(ctx context.Context, name string) {
	pids := namespacePIDs(ctx, name)
	if len(pids) == 0 {
		return
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if WaitUntil(gctx, "processes to exit", func() (bool, error) { return len(namespacePIDs(ctx, name)) == 0, nil }) == nil {
		return
	}
	for _, pid := range namespacePIDs(ctx, name) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func namespacePIDs(ctx context.Context, name string) []int {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", name).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// sweepStale deletes namespaces of earlier networks whose owning process no
// longer exists (a test binary killed by a timeout skips its cleanups).
func sweepStale(ctx context.Context) {
	entries, err := os.ReadDir(ownerDir)
	if err != nil {
		return
	}
	var all []string
	if out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				all = append(all, f[0])
			}
		}
	}
	for _, e := range entries {
		prefix, ok := strings.CutSuffix(e.Name(), "pid")
		if !ok || !strings.HasPrefix(prefix, "sfw") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(ownerDir, e.Name()))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		for i := len(all) - 1; i >= 0; i-- {
			if strings.HasPrefix(all[i], prefix) {
				deleteNamespace(ctx, all[i])
			}
		}
		os.Remove(filepath.Join(ownerDir, e.Name()))
	}
}

func prefixString(a netip.Addr) string {
	return netip.PrefixFrom(a, prefixLen).String()
}

// ipCmd runs "ip [-n ns] args...".
func ipCmd(ctx context.Context, ns string, args ...string) error {
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	return run(ctx, "ip", args...)
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("testbed: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
