//go:build !linux

package shaper

import (
	"errors"
	"fmt"
)

// QueueOptions tune the kernel side of a Queue.
type QueueOptions struct {
	MaxQueueLen uint32
	ReadBuffer  int
}

// Queue needs Linux's NFQUEUE.
type Queue struct{ Num uint16 }

var errNotLinux = errors.New("shaper: NFQUEUE needs Linux")

// OpenQueue fails: NFQUEUE exists only on Linux.
func OpenQueue(num uint16, link *Link, opt QueueOptions) (*Queue, error) {
	return nil, fmt.Errorf("queue %d: %w", num, errNotLinux)
}

func (q *Queue) Stats() Stats                  { return Stats{} }
func (q *Queue) Held() int                     { return 0 }
func (q *Queue) VerdictErrors() (int64, error) { return 0, nil }
func (q *Queue) Close() error                  { return nil }

// ReadKernelStats fails off Linux.
func ReadKernelStats(num uint16) (KernelStats, error) { return KernelStats{}, errNotLinux }
