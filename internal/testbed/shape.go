package testbed

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed/shaper"
)

// ShapeConfig says which packets arriving at a namespace to impair, and how.
type ShapeConfig struct {
	// Link is the impairment: delay, jitter, loss, rate, seed.
	Link shaper.Config
	// Protocol is "udp" (the default), "tcp" or "all".
	Protocol string
	// From, when not empty, limits shaping to packets from these sources.
	From []netip.Prefix
	// Queue tunes the kernel side; the zero value is fine.
	Queue shaper.QueueOptions
}

// Shaper impairs the packets one namespace receives on one interface. It
// runs in this process: an iptables NFQUEUE rule in the namespace passes
// matching packets to a goroutine that holds or drops them. Close removes
// it and releases what it holds.
type Shaper struct {
	NS    *Namespace
	Iface string
	Cfg   ShapeConfig

	q         *shaper.Queue
	rules     [][]string
	closeOnce sync.Once
	closeErr  error
}

// queueNums hands out NFQUEUE numbers. Numbers are per namespace in the
// kernel; one counter for the process keeps them unique in any case.
var queueNums atomic.Uint32

// Shape starts impairing packets that arrive at ns on iface (the
// receiving side's input hook: see the shaper package for why). To shape
// both directions of a link, shape each end's arrivals. The result is
// live when Shape returns.
func (ns *Namespace) Shape(ctx context.Context, iface string, cfg ShapeConfig) (*Shaper, error) {
	if ns == nil {
		return nil, errors.New("testbed: Shape needs a namespace of the testbed")
	}
	link, err := shaper.NewLink(cfg.Link)
	if err != nil {
		return nil, err
	}
	var proto []string
	switch cfg.Protocol {
	case "", "udp":
		proto = []string{"-p", "udp"}
	case "tcp":
		proto = []string{"-p", "tcp"}
	case "all":
	default:
		return nil, fmt.Errorf("testbed: shape: unknown protocol %q", cfg.Protocol)
	}
	n := queueNums.Add(1)
	if n > 65535 {
		return nil, errors.New("testbed: shape: out of queue numbers")
	}
	num := uint16(n)
	s := &Shaper{NS: ns, Iface: iface, Cfg: cfg}
	if err := ns.Do(func() error {
		var err error
		s.q, err = shaper.OpenQueue(num, link, cfg.Queue)
		return err
	}); err != nil {
		return nil, err
	}
	sources := []string{""}
	if len(cfg.From) > 0 {
		sources = sources[:0]
		for _, p := range cfg.From {
			sources = append(sources, p.Masked().String())
		}
	}
	for _, src := range sources {
		rule := []string{"INPUT", "-i", iface}
		rule = append(rule, proto...)
		if src != "" {
			rule = append(rule, "-s", src)
		}
		rule = append(rule, "-j", "NFQUEUE", "--queue-num", strconv.Itoa(int(num)))
		if err := iptables(ctx, ns.Name, append([]string{"-A"}, rule...)...); err != nil {
			s.Close()
			return nil, err
		}
		s.rules = append(s.rules, rule)
	}
	return s, nil
}

// Stats returns the shaper's decisions so far.
func (s *Shaper) Stats() shaper.Stats { return s.q.Stats() }

// KernelStats reads the kernel's counters of the shaper's queue: packets
// the kernel dropped because the shaper fell behind would show here.
func (s *Shaper) KernelStats() (shaper.KernelStats, error) {
	var ks shaper.KernelStats
	err := s.NS.Do(func() error {
		var err error
		ks, err = shaper.ReadKernelStats(s.q.Num)
		return err
	})
	return ks, err
}

// VerdictErrors counts verdicts the kernel refused.
func (s *Shaper) VerdictErrors() (int64, error) { return s.q.VerdictErrors() }

// Close removes the iptables rules, releases every held packet and unbinds
// the queue. It is safe to call more than once and after the namespace is
// gone.
func (s *Shaper) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var errs []error
		_, nsErr := os.Stat("/run/netns/" + s.NS.Name)
		for _, rule := range s.rules {
			if nsErr == nil {
				errs = append(errs, iptables(ctx, s.NS.Name, append([]string{"-D"}, rule...)...))
			}
		}
		errs = append(errs, s.q.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func (s *Shaper) String() string {
	return fmt.Sprintf("shaper on %s:%s (%v)", s.NS.Name, s.Iface, s.Cfg.Link)
}

// iptables runs iptables inside namespace ns, waiting for the xtables lock.
func iptables(ctx context.Context, ns string, args ...string) error {
	return run(ctx, "ip", append([]string{"netns", "exec", ns, "iptables", "-w", "5"}, args...)...)
}
