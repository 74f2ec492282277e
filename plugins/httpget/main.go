// Command httpget is a skill that fetches a page from an allow-listed host
// and returns its title and text. It needs the http capability and the
// host on the plugin's http_allow list.
package main

import (
	"encoding/json"
	"errors"
	"html"
	"regexp"
	"strings"

	"github.com/porticohq/portico/sdk"
)

var (
	titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	dropRE  = regexp.MustCompile(`(?is)<(script|style|head)[^>]*>.*?</(script|style|head)>`)
	tagRE   = regexp.MustCompile(`(?s)<[^>]*>`)
)

// maxText bounds the text returned.
const maxText = 4000

func pageText(body string) (title, text string) {
	if m := titleRE.FindStringSubmatch(body); m != nil {
		title = strings.TrimSpace(html.UnescapeString(m[1]))
	}
	text = tagRE.ReplaceAllString(dropRE.ReplaceAllString(body, " "), " ")
	text = strings.Join(strings.Fields(html.UnescapeString(text)), " ")
	if len(text) > maxText {
		text = text[:maxText] + "…"
	}
	return title, text
}

func init() {
	sdk.Skill("http_get", func(in sdk.Input) ([]byte, error) {
		var q struct {
			URL string `json:"url"`
		}
		if err := json.Unmarshal(in.Payload, &q); err != nil || !(strings.HasPrefix(q.URL, "https://") || strings.HasPrefix(q.URL, "http://")) {
			return nil, sdk.BadInput("want {\"url\": \"https://...\"}")
		}
		status, body, err := sdk.HTTP(sdk.Request{Method: "GET", URL: q.URL})
		if errors.Is(err, sdk.ErrDenied) {
			return nil, errors.New("the gateway refused the request: grant http and add the host to http_allow in the http-get [[plugins]] table (" + err.Error() + ")")
		}
		if err != nil {
			return nil, err
		}
		title, text := pageText(string(body))
		return json.Marshal(map[string]any{"url": q.URL, "status": status, "title": title, "text": text})
	})
}

func main() {}
