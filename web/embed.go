// Package web embeds the portal's HTML templates and static files (CSS, and
// the script that keeps a changing page current), so the server binary needs
// no files beside it and pages load nothing from a CDN.
package web

import "embed"

// FS holds templates/*.html and static/*.
//
//go:embed templates/*.html static/*
var FS embed.FS
