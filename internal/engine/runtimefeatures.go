package engine

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/specconv"
)

// runtimeHosts holds, per runtime path, the host description specconv
// gets for containers of that runtime: the engine's, with what the
// runtime cannot take out. Asked once per runtime and kept.
var runtimeHosts sync.Map // path -> *specconv.Host

// hostFor returns the host description for containers run by rt. The
// engine's own runtime takes every namespace this kernel has and the
// newest spec version; another (runc 1.1, crun 1.8) may know neither the
// time namespace nor runtime-spec 1.2, and a spec asking for either
// fails every start with an error that names neither.
func (e *Engine) hostFor(rt string) *specconv.Host {
	if rt == e.runtime {
		return e.host
	}
	if h, ok := runtimeHosts.Load(rt); ok {
		return h.(*specconv.Host)
	}
	f := runtimeFeatures(rt)
	h := *e.host
	h.TimeNamespace = h.TimeNamespace && slices.Contains(f.namespaces, "time")
	h.OCIVersion = f.ociVersionMax
	runtimeHosts.Store(rt, &h)
	return &h
}

// features is what a runtime says it supports.
type features struct {
	ociVersionMax string
	namespaces    []string
}

// runtimeFeatures asks `RUNTIME features` (runtime-spec's features
// document, runc 1.1 and later). A runtime without the command (crun
// 1.8) is taken to know runtime-spec 1.0.2 and no namespace beyond
// those: leaving the time namespace out gives up confinement SECURITY.md
// wants where a runtime can give it, while keeping it in would break
// every start.
func runtimeFeatures(rt string) features {
	oldest := features{ociVersionMax: "1.0.2"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, rt, "features").Output()
	if err != nil {
		return oldest
	}
	var doc struct {
		OCIVersionMax string `json:"ociVersionMax"`
		Linux         *struct {
			Namespaces []string `json:"namespaces"`
		} `json:"linux"`
	}
	if json.Unmarshal(out, &doc) != nil || doc.OCIVersionMax == "" {
		return oldest
	}
	f := features{ociVersionMax: doc.OCIVersionMax}
	if doc.Linux != nil {
		f.namespaces = doc.Linux.Namespaces
	}
	return f
}
