package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestPageReferencesResolve: every file the page loads (src/href in
// index.html, modules and worklets named in app.js) is embedded, so the
// page served from Files is complete.
func TestPageReferencesResolve(t *testing.T) {
	read := func(name string) string {
		b, err := fs.ReadFile(Files, name)
		if err != nil {
			t.Fatalf("%s is not embedded: %v", name, err)
		}
		return string(b)
	}
	html := read("index.html")
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(html, -1)
	if len(refs) < 2 {
		t.Fatalf("index.html references %d files, want the script and the stylesheet", len(refs))
	}
	for _, r := range refs {
		read(r[1])
	}
	app := read("app.js")
	mods := regexp.MustCompile(`new URL\('([^']+)', import\.meta\.url\)`).FindAllStringSubmatch(app, -1)
	if len(mods) == 0 {
		t.Fatal("app.js loads no worklet module")
	}
	for _, m := range mods {
		w := read(m[1])
		for _, name := range []string{"rspp-capture", "rspp-playback"} {
			if !strings.Contains(w, "registerProcessor('"+name+"'") {
				t.Errorf("%s does not register %s", m[1], name)
			}
		}
	}
}

// TestPageSpeaksTheProtocol: the message types the page sends and handles
// are those of PROTOCOL.md, so a rename on either side is caught here.
func TestPageSpeaksTheProtocol(t *testing.T) {
	b, err := fs.ReadFile(Files, "app.js")
	if err != nil {
		t.Fatal(err)
	}
	app := string(b)
	for _, s := range []string{
		"type: 'start'", "sample_rate: RATE", "channels: 1", "type: 'playback'", "event: 'started'",
		"event: 'position'", "event: 'done'", "type: 'stop'",
		"case 'ready'", "case 'turn'", "case 'transcript'", "case 'reply'", "case 'audio_start'",
		"case 'fence'", "case 'error'", "/ws'",
	} {
		if !strings.Contains(strings.ReplaceAll(app, "`", "'"), s) {
			t.Errorf("app.js lacks %q", s)
		}
	}
}
