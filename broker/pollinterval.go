package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// pollIntervals is the -poll-interval-filepath file: milliseconds per pool.
type pollIntervals struct {
	Unrestricted *int64 `json:"unrestricted_poll_interval"`
	Restricted   *int64 `json:"restricted_poll_interval"`
}

// maxPollInterval bounds NextPoll so that a typo cannot silence proxies.
const maxPollInterval = 24 * time.Hour

// ParsePollIntervals reads {"unrestricted_poll_interval":ms,
// "restricted_poll_interval":ms}. Both keys are required; 0 means "send no
// NextPoll".
func ParsePollIntervals(r io.Reader) (unrestricted, restricted time.Duration, err error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<16))
	if err != nil {
		return 0, 0, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p pollIntervals
	if err := dec.Decode(&p); err != nil {
		return 0, 0, fmt.Errorf("poll intervals: %w", err)
	}
	if dec.More() {
		return 0, 0, errors.New("poll intervals: trailing data")
	}
	if p.Unrestricted == nil || p.Restricted == nil {
		return 0, 0, errors.New("poll intervals: need unrestricted_poll_interval and restricted_poll_interval")
	}
	u := time.Duration(*p.Unrestricted) * time.Millisecond
	rr := time.Duration(*p.Restricted) * time.Millisecond
	if *p.Unrestricted < 0 || *p.Restricted < 0 || u > maxPollInterval || rr > maxPollInterval {
		return 0, 0, fmt.Errorf("poll intervals: out of range 0..%d ms", maxPollInterval.Milliseconds())
	}
	return u, rr, nil
}

// LoadPollIntervals reads a poll interval file.
func LoadPollIntervals(path string) (unrestricted, restricted time.Duration, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return ParsePollIntervals(f)
}
