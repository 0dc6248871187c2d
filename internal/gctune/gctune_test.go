package gctune

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestApply(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	Apply()
	if got := debug.SetGCPercent(100); got != Percent {
		t.Errorf("GOGC after Apply = %d, want %d", got, Percent)
	}
	limit := debug.SetMemoryLimit(-1)
	if total := totalMemory(); total > 0 && limit != int64(total/2) {
		t.Errorf("memory limit = %d, want half of %d", limit, total)
	}
}

func TestApplyRespectsEnvironment(t *testing.T) {
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "1GiB")
	defer debug.SetGCPercent(debug.SetGCPercent(77))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(12345678))
	Apply()
	if got := debug.SetGCPercent(77); got != 77 {
		t.Errorf("Apply changed GOGC to %d although GOGC is set", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 12345678 {
		t.Errorf("Apply changed the memory limit to %d although GOMEMLIMIT is set", got)
	}
}
