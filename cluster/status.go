package cluster

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// StatusHandler serves n's view of the cluster: as JSON (the Stats value)
// when the request asks for it (?format=json or an Accept header naming
// application/json), else as a small self-refreshing HTML page listing the
// remotes, their state, when each was last heard, and the counters.
//
//	http.Handle("/peerkit", cluster.StatusHandler(n))
//
// It exposes cluster membership: serve it on an internal address only.
func StatusHandler(n *Node) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		st := n.Stats()
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.Encode(st)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		statusPage.Execute(w, statusView{Stats: st, Now: time.Now()})
	})
}

type statusView struct {
	Stats
	Now time.Time
}

func (v statusView) Ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return v.Now.Sub(t).Round(time.Millisecond).String() + " ago"
}

func (v statusView) Up() int {
	c := 0
	for _, r := range v.Remotes {
		if r.State == StateUp {
			c++
		}
	}
	return c
}

var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>peerkit {{.Addr}}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.up{color:#080}.connecting{color:#a60}.backoff{color:#b00}
</style></head><body>
<h1>peerkit node {{.Addr}}</h1>
<p>instance <code>{{printf "%016x" .Instance}}</code> · <span id="summary">{{.Up}} of {{len .Remotes}} remotes up</span> · <a href="?format=json">JSON</a></p>
<table id="remotes"><thead><tr><th>remote</th><th>instance</th><th>state</th><th>since</th><th>last heard</th>
<th>msgs out</th><th>bytes out</th><th>msgs in</th><th>bytes in</th><th>dropped</th><th>queue</th></tr></thead><tbody>
{{range .Remotes}}<tr><td>{{.Addr}}</td><td><code>{{printf "%016x" .Instance}}</code></td><td class="{{.State}}">{{.State}}</td>
<td>{{$.Ago .Since}}</td><td>{{$.Ago .LastHeard}}</td><td class="n">{{.MessagesSent}}</td><td class="n">{{.BytesSent}}</td>
<td class="n">{{.MessagesReceived}}</td><td class="n">{{.BytesReceived}}</td><td class="n">{{.Dropped}}</td><td class="n">{{.QueueDepth}}/{{.QueueCapacity}}</td></tr>
{{else}}<tr><td colspan="11">no remotes</td></tr>{{end}}
</tbody></table>
<h2>Totals</h2>
<table id="totals"><tbody>
<tr><th>messages sent</th><td class="n">{{.MessagesSent}}</td><th>bytes sent</th><td class="n">{{.BytesSent}}</td></tr>
<tr><th>messages received</th><td class="n">{{.MessagesReceived}}</td><th>bytes received</th><td class="n">{{.BytesReceived}}</td></tr>
<tr><th>dropped</th><td class="n">{{.Dropped}}</td><th>reconnect attempts</th><td class="n">{{.ReconnectAttempts}}</td></tr>
</tbody></table>
<h2>Handshake failures</h2>
<table id="handshakes"><tbody>{{range $k, $v := .HandshakeFailures}}<tr><th>{{$k}}</th><td class="n">{{$v}}</td></tr>{{end}}</tbody></table>
</body></html>
`))
