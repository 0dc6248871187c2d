// Package gctune sets the Go garbage collector for Snowfall's relaying
// programs (client, proxy, bridge).
//
// Their live heaps are small but they allocate on every packet (pion's
// SCTP and DTLS layers do), so with Go's default GOGC=100 the collector runs
// almost continuously: measured with make bench, it cost a quarter of the
// chain's CPU. A higher GOGC trades a few megabytes of heap for most of that
// CPU; a soft memory limit keeps a large bridge from growing without bound.
// Operators keep the last word: GOGC and GOMEMLIMIT in the environment win.
package gctune

import (
	"os"
	"runtime/debug"
)

// Percent is the GOGC value Apply sets.
const Percent = 400

// Apply sets GOGC to Percent and the soft memory limit to half the memory
// the process may use (the machine's, or its container's limit when lower),
// each unless the environment already sets it.
func Apply() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(Percent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if total := totalMemory(); total > 0 {
			debug.SetMemoryLimit(int64(total / 2))
		}
	}
}
