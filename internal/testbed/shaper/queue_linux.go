package shaper

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// QueueOptions tune the kernel side of a Queue.
type QueueOptions struct {
	// MaxQueueLen is how many packets the kernel may hold for us at once;
	// beyond it the kernel drops (counted in KernelStats). Default 16384:
	// 40 ms at 400,000 packets per second.
	MaxQueueLen uint32
	// ReadBuffer is the netlink socket's receive buffer. Default 8 MiB.
	ReadBuffer int
}

// copyRange is how much of each packet the kernel copies to us: enough
// for the IP header, which holds the packet's length.
const copyRange = 64

// Queue feeds the packets of one NFQUEUE queue number through a Pipe.
type Queue struct {
	Num  uint16
	pipe *Pipe
	nf   *nfqueue.Nfqueue

	stopPipe, stopReader context.CancelFunc
	pipeDone             chan struct{}
	closeOnce            sync.Once
	closeErr             error
}

// OpenQueue binds queue number num and starts shaping its packets with
// link. The netlink socket belongs to the network namespace of the calling
// thread: call it from inside the namespace whose iptables rules send
// packets to num (testbed's Namespace.Do). Close releases what is held.
func OpenQueue(num uint16, link *Link, opt QueueOptions) (*Queue, error) {
	if opt.MaxQueueLen == 0 {
		opt.MaxQueueLen = 16384
	}
	if opt.ReadBuffer == 0 {
		opt.ReadBuffer = 8 << 20
	}
	nf, err := nfqueue.Open(&nfqueue.Config{
		NfQueue:      num,
		MaxPacketLen: copyRange,
		MaxQueueLen:  opt.MaxQueueLen,
		Copymode:     nfqueue.NfQnlCopyPacket,
		// Held packets that no longer fit are dropped, as by a router.
		Flags: 0,
	})
	if err != nil {
		return nil, fmt.Errorf("shaper: open queue %d: %w", num, err)
	}
	// Without NoENOBUFS a burst that overflows the socket ends the reader;
	// with it the kernel drops those packets and counts them.
	if err := nf.SetOption(netlink.NoENOBUFS, true); err != nil {
		nf.Close()
		return nil, fmt.Errorf("shaper: queue %d: %w", num, err)
	}
	if err := setReadBuffer(nf.Con, opt.ReadBuffer); err != nil {
		nf.Close()
		return nil, fmt.Errorf("shaper: queue %d: %w", num, err)
	}
	q := &Queue{Num: num, nf: nf, pipeDone: make(chan struct{})}
	q.pipe = NewPipe(link, func(id uint32, accept bool) error {
		v := nfqueue.NfDrop
		if accept {
			v = nfqueue.NfAccept
		}
		return nf.SetVerdict(id, v)
	})

	readerCtx, stopReader := context.WithCancel(context.Background())
	err = nf.RegisterWithErrorFunc(readerCtx, func(a nfqueue.Attribute) int {
		if a.PacketID == nil {
			return 0
		}
		var payload []byte
		if a.Payload != nil {
			payload = *a.Payload
		}
		var capLen uint32
		if a.CapLen != nil {
			capLen = *a.CapLen
		}
		q.pipe.Packet(*a.PacketID, PacketSize(payload, capLen))
		return 0
	}, func(err error) int {
		if readerCtx.Err() != nil {
			return 1
		}
		var op *netlink.OpError
		if errors.As(err, &op) && (op.Timeout() || op.Temporary()) {
			return 0
		}
		return 1
	})
	if err != nil {
		stopReader()
		nf.Close()
		return nil, fmt.Errorf("shaper: register queue %d: %w", num, err)
	}
	pipeCtx, stopPipe := context.WithCancel(context.Background())
	q.stopPipe, q.stopReader = stopPipe, stopReader
	go func() {
		defer close(q.pipeDone)
		q.pipe.Run(pipeCtx)
	}()
	return q, nil
}

// Stats returns the link's counts.
func (q *Queue) Stats() Stats { return q.pipe.Stats() }

// Held is the number of packets the pipe holds now.
func (q *Queue) Held() int { return q.pipe.Held() }

// VerdictErrors counts verdicts the kernel refused, with the last error.
func (q *Queue) VerdictErrors() (int64, error) { return q.pipe.VerdictErrors() }

// Close releases every held packet, then unbinds the queue. Remove the
// iptables rule first, or packets arriving meanwhile are dropped by the
// kernel for want of a listener.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		q.stopPipe()
		<-q.pipeDone
		q.stopReader()
		q.closeErr = q.nf.Close()
	})
	return q.closeErr
}

// ReadKernelStats reads the counters of queue num. Like OpenQueue it reads
// the calling thread's namespace.
func ReadKernelStats(num uint16) (KernelStats, error) {
	f, err := os.Open("/proc/thread-self/net/netfilter/nfnetlink_queue")
	if err != nil {
		return KernelStats{}, fmt.Errorf("shaper: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if ks, n, ok := parseKernelStats(sc.Text()); ok && n == num {
			return ks, nil
		}
	}
	if err := sc.Err(); err != nil {
		return KernelStats{}, fmt.Errorf("shaper: %w", err)
	}
	return KernelStats{}, fmt.Errorf("shaper: queue %d not listed", num)
}

// setReadBuffer sizes the netlink socket's receive buffer. SO_RCVBUF is
// capped by net.core.rmem_max (212 KB here, a few hundred queued packets),
// too little for a burst of a fast sender; as root SO_RCVBUFFORCE passes
// the cap, and without the privilege the capped size is what we get.
func setReadBuffer(c *netlink.Conn, n int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil {
		return err
	}
	if serr != nil {
		return c.SetReadBuffer(n)
	}
	return nil
}
