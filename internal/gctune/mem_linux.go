package gctune

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// cgroupMemoryMax is the cgroup v2 limit of this process's group (a
// container's memory limit).
const cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// totalMemory returns the memory this process may use in bytes: the
// machine's RAM, or the cgroup's limit when that is lower; 0 if unknown.
func totalMemory() uint64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0
	}
	total := uint64(si.Totalram) * uint64(si.Unit)
	if b, err := os.ReadFile(cgroupMemoryMax); err == nil {
		if limit, ok := parseMemoryMax(string(b)); ok && limit < total {
			total = limit
		}
	}
	return total
}

// parseMemoryMax reads memory.max: a byte count, or "max" for no limit.
func parseMemoryMax(s string) (uint64, bool) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	return n, err == nil && n > 0
}
