// Package status serves a node's view of the cluster over HTTP, as JSON
// and as a small self-refreshing HTML page: the remotes with their state,
// metadata and traffic, the totals, and the recent failed dials and
// handshakes. It is its own package so that package cluster does not
// import net/http or html/template.
//
//	http.Handle("/peerkit", status.Handler(n))
//
// It exposes cluster membership: serve it on an internal address only.
package status

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/peerkit/peerkit/cluster"
)

// Handler serves n's view of the cluster: as JSON (a Document) when the
// request asks for it (?format=json, or an Accept header naming
// application/json), else as an HTML page that refreshes itself every two
// seconds. Only GET and HEAD are allowed.
func Handler(n *cluster.Node) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		doc := NewDocument(n.Stats(), time.Now())
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.Encode(doc)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		statusPage.Execute(w, doc)
	})
}

// Document is the JSON (and the HTML page's) view of cluster.Stats: the
// same fields, except that instance ids are 16 hex digits, as strings (a
// 64-bit integer loses digits in JavaScript and jq), and metadata is text
// (bytes that are not UTF-8 are replaced; the page escapes it).
type Document struct {
	cluster.Stats
	Instance       string    `json:"instance"`
	Remotes        []Remote  `json:"remotes"`
	RecentRemovals []Removal `json:"recent_removals"`
	// Now is when the document was made (the page shows times relative
	// to it).
	Now time.Time `json:"now"`
}

// Removal is one removal in a Document.
type Removal struct {
	cluster.Removal
	Instance string `json:"instance"`
}

// Remote is one remote in a Document.
type Remote struct {
	cluster.RemoteStats
	Instance string `json:"instance,omitempty"`
	Meta     string `json:"meta,omitempty"`
}

// NewDocument makes the view of st at now.
func NewDocument(st cluster.Stats, now time.Time) Document {
	d := Document{Stats: st, Instance: hexID(st.Instance), Now: now, Remotes: make([]Remote, 0, len(st.Remotes))}
	for _, r := range st.Remotes {
		d.Remotes = append(d.Remotes, Remote{RemoteStats: r, Instance: hexID(r.Instance), Meta: string(r.Meta)})
	}
	for _, r := range st.RecentRemovals {
		d.RecentRemovals = append(d.RecentRemovals, Removal{Removal: r, Instance: hexID(r.Instance)})
	}
	return d
}

func hexID(id uint64) string {
	if id == 0 {
		return ""
	}
	return fmt.Sprintf("%016x", id)
}

// Ago says how long before the document t was, for the page.
func (d Document) Ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return d.Now.Sub(t).Round(time.Millisecond).String() + " ago"
}

// Up counts the remotes that are up.
func (d Document) Up() int {
	c := 0
	for _, r := range d.Remotes {
		if r.State == cluster.StateUp {
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
<p>instance <code>{{.Instance}}</code> · <span id="summary">{{.Up}} of {{len .Remotes}} remotes up</span> · <a href="?format=json">JSON</a></p>
<table id="remotes"><thead><tr><th>remote</th><th>instance</th><th>meta</th><th>state</th><th>since</th><th>last heard</th>
<th>msgs out</th><th>bytes out</th><th>msgs in</th><th>bytes in</th><th>dropped</th><th>queue</th></tr></thead><tbody>
{{range .Remotes}}<tr><td>{{.Addr}}</td><td><code>{{.Instance}}</code></td><td><code>{{.Meta}}</code></td><td class="{{.State}}">{{.State}}</td>
<td>{{$.Ago .Since}}</td><td>{{$.Ago .LastHeard}}</td><td class="n">{{.MessagesSent}}</td><td class="n">{{.BytesSent}}</td>
<td class="n">{{.MessagesReceived}}</td><td class="n">{{.BytesReceived}}</td><td class="n">{{.Dropped}}</td><td class="n">{{.QueueDepth}}/{{.QueueCapacity}}</td></tr>
{{else}}<tr><td colspan="12">no remotes</td></tr>{{end}}
</tbody></table>
<h2>Totals</h2>
<table id="totals"><tbody>
<tr><th>messages sent</th><td class="n">{{.MessagesSent}}</td><th>bytes sent</th><td class="n">{{.BytesSent}}</td></tr>
<tr><th>messages received</th><td class="n">{{.MessagesReceived}}</td><th>bytes received</th><td class="n">{{.BytesReceived}}</td></tr>
<tr><th>dropped</th><td class="n">{{.Dropped}}</td><th>reconnect attempts</th><td class="n">{{.ReconnectAttempts}}</td></tr>
<tr><th>dial failures</th><td class="n">{{.DialFailures}}</td><th></th><td></td></tr>
</tbody></table>
<h2>Handshake failures</h2>
<table id="handshakes"><tbody>{{range $k, $v := .HandshakeFailures}}<tr><th>{{$k}}</th><td class="n">{{$v}}</td></tr>{{end}}</tbody></table>
<h2>Recent removals</h2>
<table id="removals"><thead><tr><th>when</th><th>remote</th><th>instance</th><th>reason</th><th>error</th></tr></thead><tbody>
{{range .RecentRemovals}}<tr><td>{{$.Ago .Time}}</td><td>{{.Addr}}</td><td><code>{{.Instance}}</code></td><td>{{.Reason}}</td><td>{{.Err}}</td></tr>
{{else}}<tr><td colspan="5">none</td></tr>{{end}}
</tbody></table>
<h2>Recent failed dials and handshakes</h2>
<table id="failures"><thead><tr><th>when</th><th>address</th><th>stage</th><th>direction</th><th>error</th></tr></thead><tbody>
{{range .RecentFailures}}<tr><td>{{$.Ago .Time}}</td><td>{{.Addr}}</td><td>{{.Stage}}</td><td>{{if .Dialed}}out{{else}}in{{end}}</td><td>{{.Err}}</td></tr>
{{else}}<tr><td colspan="5">none</td></tr>{{end}}
</tbody></table>
</body></html>
`))
