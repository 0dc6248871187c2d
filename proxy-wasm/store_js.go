//go:build js

package main

import (
	"syscall/js"

	"github.com/snowfall-pt/snowfall/proxy"
)

// storePrefix starts every localStorage key of the proxy; the page's own
// keys (the on/off switch) share it.
const storePrefix = "snowfall."

// localStore is a proxy.Store in the page's localStorage. Storage can be
// missing or refuse writes (private windows, blocked third-party storage in
// an embedded badge); values then live in memory for the visit.
type localStore struct {
	ls  js.Value
	mem proxy.MemStore
}

func newLocalStore() *localStore {
	s := &localStore{}
	jsCall(func() { s.ls = js.Global().Get("localStorage") })
	return s
}

// Get implements proxy.Store.
func (s *localStore) Get(key string) (string, bool) {
	if v, ok := s.mem.Get(key); ok {
		return v, true
	}
	var v js.Value
	if !s.ls.Truthy() || jsCall(func() { v = s.ls.Call("getItem", storePrefix+key) }) != nil {
		return "", false
	}
	if v.Type() != js.TypeString {
		return "", false
	}
	return v.String(), true
}

// Set implements proxy.Store.
func (s *localStore) Set(key, value string) error {
	s.mem.Set(key, value)
	if !s.ls.Truthy() {
		return nil
	}
	return jsCall(func() { s.ls.Call("setItem", storePrefix+key, value) })
}
