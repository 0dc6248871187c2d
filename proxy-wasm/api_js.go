//go:build js

package main

import (
	"encoding/json"
	"syscall/js"

	"github.com/snowfall-pt/snowfall/internal/version"
)

// publish puts the page's API on globalThis.snowfall:
//
//	snowfall.start(configJSON) -> "" or an error message
//	snowfall.stop()
//	snowfall.retry()
//	snowfall.state() -> state JSON (see State)
//	snowfall.onUpdate(fn)      fn(stateJSON) on every change
//	snowfall.version
//
// None of them blocks the page: the work happens on goroutines. Then it
// calls globalThis.snowfallReady, if the page set it.
func publish(c *controller) {
	api := js.Global().Get("Object").New()
	api.Set("version", version.String())
	api.Set("start", js.FuncOf(func(_ js.Value, args []js.Value) any {
		var cfg PageConfig
		if len(args) > 0 && args[0].Type() == js.TypeString {
			var err error
			if cfg, err = ParsePageConfig([]byte(args[0].String())); err != nil {
				c.setError(&StateError{Kind: ErrKindConfig, Message: err.Error()})
				return err.Error()
			}
		}
		if err := c.Start(cfg); err != nil {
			return err.Error()
		}
		return ""
	}))
	api.Set("stop", js.FuncOf(func(js.Value, []js.Value) any {
		c.Stop()
		return nil
	}))
	api.Set("retry", js.FuncOf(func(js.Value, []js.Value) any {
		c.Retry()
		return nil
	}))
	api.Set("state", js.FuncOf(func(js.Value, []js.Value) any {
		return stateJSON(c.State())
	}))
	api.Set("onUpdate", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) == 0 || args[0].Type() != js.TypeFunction {
			c.onUpdate(nil)
			return nil
		}
		fn := args[0]
		// Later: the first update would otherwise run inside this call.
		go c.onUpdate(func(s State) {
			jsCall(func() { fn.Invoke(stateJSON(s)) })
		})
		return nil
	}))
	js.Global().Set("snowfall", api)
	if ready := js.Global().Get("snowfallReady"); ready.Type() == js.TypeFunction {
		ready.Invoke()
	}
}

func stateJSON(s State) string {
	b, err := json.Marshal(s)
	if err != nil {
		return "{}"
	}
	return string(b)
}
