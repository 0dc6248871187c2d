//go:build js

package main

import (
	"context"
	"fmt"
	"syscall/js"

	"github.com/snowfall-pt/snowfall/proxy"
)

// fetchPoster is a proxy.Poster on the browser's fetch. Using it instead of
// net/http (whose js port also ends in fetch) keeps net/http, crypto/tls
// and crypto/x509 out of the download: they are most of a Go binary.
type fetchPoster struct{}

// Post implements proxy.Poster.
func (fetchPoster) Post(ctx context.Context, url string, body []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var abort, promise js.Value
	err := jsCall(func() {
		abort = js.Global().Get("AbortController").New()
		opts := js.Global().Get("Object").New()
		opts.Set("method", "POST")
		opts.Set("body", jsBytes(body))
		// No cookies or credentials for the broker; no cache.
		opts.Set("credentials", "omit")
		opts.Set("cache", "no-store")
		opts.Set("signal", abort.Get("signal"))
		promise = js.Global().Call("fetch", url, opts)
	})
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { jsCall(func() { abort.Call("abort") }) })
	defer stop()
	resp, err := await(ctx, promise)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	if status := resp.Get("status").Int(); status != 200 {
		// Let the body go; the abort on return frees it.
		return nil, fmt.Errorf("%w: %d %s", proxy.ErrBrokerStatus, status, resp.Get("statusText").String())
	}
	// A Content-Length over the bound is refused before reading.
	if n := resp.Get("headers").Call("get", "content-length"); n.Type() == js.TypeString {
		var size int
		if _, err := fmt.Sscan(n.String(), &size); err == nil && size > proxy.MaxReplyBody {
			abort.Call("abort")
			return nil, proxy.ErrBrokerBodyTooBig
		}
	}
	return readBounded(ctx, resp.Get("body"), abort)
}

// readBounded reads a response body stream, giving up (and aborting the
// fetch) past proxy.MaxReplyBody bytes, so that a broker cannot make the
// page hold more.
func readBounded(ctx context.Context, body, abort js.Value) ([]byte, error) {
	if body.IsNull() || body.IsUndefined() {
		return nil, nil
	}
	var reader js.Value
	if err := jsCall(func() { reader = body.Call("getReader") }); err != nil {
		return nil, fmt.Errorf("reading reply: %w", err)
	}
	var out []byte
	for {
		chunk, err := await(ctx, reader.Call("read"))
		if err != nil {
			return nil, fmt.Errorf("reading reply: %w", err)
		}
		if chunk.Get("done").Truthy() {
			return out, nil
		}
		v := chunk.Get("value")
		n := v.Get("byteLength").Int()
		if len(out)+n > proxy.MaxReplyBody {
			jsCall(func() { abort.Call("abort") })
			return nil, proxy.ErrBrokerBodyTooBig
		}
		start := len(out)
		out = append(out, make([]byte, n)...)
		js.CopyBytesToGo(out[start:], v)
	}
}
