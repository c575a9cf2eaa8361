package webapp

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// axeSource is axe-core 4.14.1 (Deque Systems, MPL-2.0; testdata/axe.LICENSE),
// the accessibility engine behind browsers' own audits.
//
//go:embed testdata/axe.min.js
var axeSource string

// axeViolation is one failed axe-core rule on a page.
type axeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

// axeRun runs the WCAG 2.0/2.1 A and AA rules on the document and keeps
// what a failure message needs.
const axeRun = `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
	.then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
		targets: v.nodes.map(n => n.target.join(" "))})))`

// accessible fails the test when axe-core finds a WCAG 2.1 A or AA
// violation (labels, contrast, names, landmarks, language…) on the page
// the browser shows. The script is evaluated through DevTools, which the
// pages' script-free CSP does not govern.
func accessible(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeSource+";true")); err != nil {
		t.Fatalf("%s: load axe-core: %v", page, err)
	}
	vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]axeViolation](axeRun, func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) }))
	if err != nil {
		t.Fatalf("%s: run axe-core: %v", page, err)
	}
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "\n  %s (%s): %s at %s", v.ID, v.Impact, v.Help, strings.Join(v.Targets, ", "))
	}
	if len(vs) > 0 {
		t.Errorf("%s: %d accessibility violations:%s", page, len(vs), b.String())
	}
}
