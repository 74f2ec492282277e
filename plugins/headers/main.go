// Command headers is a middleware plugin (http-wasm) that adds, sets and
// removes request and response headers from its config:
//
//	[plugins.config]
//	"request.set.X-Env" = "prod"          # replace a request header
//	"request.add.X-Via" = "portico"       # add a value
//	"request.remove.Cookie" = ""          # drop it before the route sees it
//	"response.set.X-Frame-Options" = "DENY"
//	"response.remove.Server" = ""         # needs a buffered response
//
// Request changes and response sets and adds apply before the route runs;
// response removals run after it, on a buffered response, so streaming
// routes (which are never buffered) keep those headers.
package main

import (
	"sort"
	"strings"

	"github.com/porticohq/portico/sdk/middleware"
)

type op struct {
	response bool
	action   string // set, add, remove
	name     string
	value    string
}

var (
	ops     []op
	loaded  bool
	loadErr string
	removes bool // some response header is removed: buffer the response
)

// load reads the config once per instance.
func load() {
	if loaded {
		return
	}
	loaded = true
	cfg, err := middleware.ConfigMap()
	if err != nil {
		loadErr = err.Error()
		return
	}
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts := strings.SplitN(k, ".", 3)
		if len(parts) != 3 || (parts[0] != "request" && parts[0] != "response") || (parts[1] != "set" && parts[1] != "add" && parts[1] != "remove") || parts[2] == "" {
			loadErr = "config key " + k + ": want request|response.set|add|remove.Header-Name"
			return
		}
		o := op{response: parts[0] == "response", action: parts[1], name: parts[2], value: cfg[k]}
		ops = append(ops, o)
		if o.response && o.action == "remove" {
			removes = true
		}
	}
}

func onRequest(req middleware.Request, resp middleware.Response) bool {
	load()
	if loadErr != "" {
		middleware.Log(middleware.LevelError, "headers: "+loadErr)
		resp.SetStatusCode(500)
		resp.SetHeader("Content-Type", "application/json")
		resp.SetBody([]byte(`{"error":{"code":"plugin_error","message":"headers middleware is misconfigured","details":null}}`))
		return false
	}
	if removes {
		middleware.EnableFeatures(middleware.BufferResponse)
	}
	for _, o := range ops {
		switch {
		case !o.response && o.action == "set":
			req.SetHeader(o.name, o.value)
		case !o.response && o.action == "add":
			req.AddHeader(o.name, o.value)
		case !o.response && o.action == "remove":
			req.RemoveHeader(o.name)
		case o.response && o.action == "set":
			resp.SetHeader(o.name, o.value)
		case o.response && o.action == "add":
			resp.AddHeader(o.name, o.value)
		}
	}
	return true
}

func onResponse(req middleware.Request, resp middleware.Response, failed bool) {
	if failed {
		return
	}
	for _, o := range ops {
		if o.response && o.action == "remove" {
			resp.RemoveHeader(o.name)
		}
	}
}

func init() {
	middleware.Handle(middleware.Handler{OnRequest: onRequest, OnResponse: onResponse})
}

func main() {}
