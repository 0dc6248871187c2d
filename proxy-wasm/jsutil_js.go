//go:build js

package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall/js"
)

// jsCall runs f, turning a JavaScript exception (a panic in syscall/js)
// into an error.
func jsCall(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(js.Error); ok {
				err = fmt.Errorf("%s", e.Error())
				return
			}
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}

// await waits for a promise. The callbacks release themselves when the
// promise settles, which may be after ctx ended: a released function must
// never be called from JavaScript.
func await(ctx context.Context, promise js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	var ok, fail js.Func
	release := func() { ok.Release(); fail.Release() }
	ok = js.FuncOf(func(_ js.Value, args []js.Value) any {
		v := js.Undefined()
		if len(args) > 0 {
			v = args[0]
		}
		ch <- result{v: v}
		release()
		return nil
	})
	fail = js.FuncOf(func(_ js.Value, args []js.Value) any {
		msg := "promise rejected"
		if len(args) > 0 {
			msg = jsErrorText(args[0])
		}
		ch <- result{err: errors.New(msg)}
		release()
		return nil
	})
	if err := jsCall(func() { promise.Call("then", ok, fail) }); err != nil {
		release()
		return js.Undefined(), err
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return js.Undefined(), ctx.Err()
	}
}

// jsErrorText is the message of a thrown value.
func jsErrorText(v js.Value) string {
	if v.Type() == js.TypeObject {
		if m := v.Get("message"); m.Type() == js.TypeString {
			return m.String()
		}
	}
	return v.String()
}

// handlers sets event handler properties on JavaScript objects and removes
// them all at once. Removal nulls the property before releasing the
// function, so that no queued event can call a released function.
type handlers struct {
	mu   sync.Mutex
	set  []handler
	done bool
}

type handler struct {
	obj  js.Value
	prop string
	fn   js.Func
}

// on sets obj[prop] to f. f runs in the browser's event loop and must not
// block.
func (h *handlers) on(obj js.Value, prop string, f func(this js.Value, args []js.Value)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return
	}
	fn := js.FuncOf(func(this js.Value, args []js.Value) any {
		f(this, args)
		return nil
	})
	obj.Set(prop, fn)
	h.set = append(h.set, handler{obj, prop, fn})
}

// clear removes every handler; later calls to on do nothing.
func (h *handlers) clear() {
	h.mu.Lock()
	set := h.set
	h.set, h.done = nil, true
	h.mu.Unlock()
	for _, x := range set {
		x.obj.Set(x.prop, js.Null())
		x.fn.Release()
	}
}

// bytesOf copies a message's data (an ArrayBuffer, a typed array or a
// string) into Go memory.
func bytesOf(data js.Value) []byte {
	if data.Type() == js.TypeString {
		return []byte(data.String())
	}
	u8 := js.Global().Get("Uint8Array").New(data)
	b := make([]byte, u8.Get("length").Int())
	js.CopyBytesToGo(b, u8)
	return b
}

// jsBytes copies b into a new Uint8Array.
func jsBytes(b []byte) js.Value {
	u8 := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(u8, b)
	return u8
}
