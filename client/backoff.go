package client

import (
	"math/rand/v2"
	"time"
)

// backoff returns the wait before retry number attempt (0 for the first):
// base doubled attempt times, at most max, then drawn at random from the
// upper half of that ("equal jitter"), so that clients that failed together,
// as when a broker or front goes down, do not retry in step. The result is
// always in [d/2, d] for that d, hence never more than max.
func backoff(attempt int, base, max time.Duration) time.Duration {
	d := max
	if attempt < 62 {
		if s := base << attempt; s > 0 && s < max {
			d = s
		}
	}
	return d/2 + rand.N(d-d/2+1)
}
