package spec

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules/arg"
)

// Notify is one entry of `notify:`: where a run sends its notifications.
type Notify struct {
	Pos diag.Pos
	// Kind is webhook (a JSON body per event) or slack (a Slack
	// incoming-webhook text message).
	Kind string
	// URL is as written; URLTemplate is set when it is a template, rendered
	// when the run starts with the first host's vars.
	URL         string
	URLPos      diag.Pos
	URLTemplate *eval.Template
	// Timeout bounds each request; Retries is how many times a failed
	// delivery is tried again.
	Timeout time.Duration
	Retries int
}

// Defaults and limits of a notify entry: a notification never holds the run
// up for long, so neither a request nor the retries may take minutes.
const (
	DefaultNotifyTimeout = 5 * time.Second
	MaxNotifyTimeout     = time.Minute
	DefaultNotifyRetries = 3
	MaxNotifyRetries     = 10
)

// NotifyKinds are the keys that name a notify entry's receiver.
var NotifyKinds = []string{"webhook", "slack"}

type notifyKeys struct {
	Webhook *yaml.Node `yaml:"webhook"`
	Slack   *yaml.Node `yaml:"slack"`
	Timeout *yaml.Node `yaml:"timeout"`
	Retries *yaml.Node `yaml:"retries"`
}

const notifyExample = "for example: notify: [{ webhook: 'https://ops.example.com/hook' }, { slack: '{{ slack_webhook_url }}' }]"

// loadNotify reads `notify:`, a list of receivers.
func (l *loader) loadNotify(rb *Runbook, n *yaml.Node) {
	if n == nil || n.ShortTag() == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.ds.Add(l.pos(n), fmt.Sprintf("\"notify\" must be a list, got %s", arg.Describe(n)), notifyExample)
		return
	}
	for i, item := range n.Content {
		item = arg.Resolve(item)
		key := fmt.Sprintf("notify[%d]", i)
		if item.Kind != yaml.MappingNode {
			l.ds.Add(l.pos(item), fmt.Sprintf("%q must be a mapping with webhook or slack, got %s", key, arg.Describe(item)), notifyExample)
			continue
		}
		nt := &Notify{Pos: l.pos(item), Timeout: DefaultNotifyTimeout, Retries: DefaultNotifyRetries}
		var k notifyKeys
		l.decodeKey(item, &k, key)
		var urlNode *yaml.Node
		switch {
		case k.Webhook != nil && k.Slack != nil:
			l.ds.Add(nt.Pos, fmt.Sprintf("%q has both webhook and slack", key), "one receiver per entry: add another entry for the other")
			continue
		case k.Webhook != nil:
			nt.Kind, urlNode = "webhook", arg.Resolve(k.Webhook)
		case k.Slack != nil:
			nt.Kind, urlNode = "slack", arg.Resolve(k.Slack)
		default:
			l.ds.Add(nt.Pos, fmt.Sprintf("%q names no receiver", key), "give webhook: URL (a JSON body per event) or slack: URL (a Slack incoming webhook)")
			continue
		}
		field := key + "." + nt.Kind
		nt.URLPos = l.pos(urlNode)
		if urlNode.Kind != yaml.ScalarNode || urlNode.ShortTag() != "!!str" {
			l.ds.Add(nt.URLPos, fmt.Sprintf("%q must be a URL, got %s", field, arg.Describe(urlNode)), "like https://hooks.example.com/runbook, or a template: '{{ slack_webhook_url }}'")
			continue
		}
		nt.URL = urlNode.Value
		if eval.IsTemplate(nt.URL) {
			t, ds := eval.ParseTemplate(nt.URL, l.d.ValuePos(urlNode), l.env(0, false))
			l.ds.Append(ds)
			nt.URLTemplate = t
		} else if msg := BadNotifyURL(nt.URL); msg != "" {
			l.ds.Add(nt.URLPos, fmt.Sprintf("%q %s", field, msg), "like https://hooks.example.com/runbook")
		}
		if v := arg.Resolve(k.Timeout); v != nil {
			var d arg.Duration
			l.decodeKey(v, &d, key+".timeout")
			switch {
			case d.Std() > MaxNotifyTimeout:
				l.ds.Add(l.pos(v), fmt.Sprintf("\"%s.timeout\" must be at most %s, got %s", key, MaxNotifyTimeout, d), "a notification must never hold the run up: 5s is the default")
			case d > 0:
				nt.Timeout = d.Std()
			}
		}
		if v := arg.Resolve(k.Retries); v != nil {
			var r int
			l.decodeKey(v, &r, key+".retries")
			if v.Kind == yaml.ScalarNode && (r < 0 || r > MaxNotifyRetries) {
				l.ds.Add(l.pos(v), fmt.Sprintf("\"%s.retries\" must be between 0 and %d, got %d", key, MaxNotifyRetries, r), "3 is the default")
			} else {
				nt.Retries = r
			}
		}
		rb.Notify = append(rb.Notify, nt)
	}
}

// BadNotifyURL says what is wrong with a receiver's URL, or "". It never
// quotes the URL: a webhook URL often holds its token.
func BadNotifyURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Scheme != "http" && u.Scheme != "https":
		return "must be an http:// or https:// URL"
	case u.Host == "":
		return "has no host"
	case strings.ContainsAny(s, " \t\n"):
		return "has a blank in it"
	}
	return ""
}

// DecodeNotify checks a notify setting given as a plain value (an inventory
// variable) as `notify:` is checked in a runbook; its URLs are plain, as the
// inventory rendered them. Its diagnostics have no line: the caller places
// them at the variable.
func DecodeNotify(v any) ([]*Notify, diag.Diags) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		var ds diag.Diags
		ds.Errorf(diag.Pos{}, "cannot read it: %v", err)
		return nil, ds
	}
	l := &loader{d: &arg.Decoder{}}
	rb := &Runbook{}
	l.loadNotify(rb, &n)
	for _, nt := range rb.Notify {
		if nt.URLTemplate != nil || eval.IsTemplate(nt.URL) {
			l.ds.Add(diag.Pos{}, fmt.Sprintf("a %s URL is still a template after the inventory's vars were rendered", nt.Kind), "")
		}
	}
	if l.ds.HasErrors() {
		return nil, l.ds
	}
	return rb.Notify, l.ds
}
