// Command httpget is a skill that fetches a page from an allow-listed host
// and returns its title and text. It needs the http capability and the
// host on the plugin's http_allow list.
package main

import (
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
		q := sdk.JSON(in.Payload)
		url := q.String("url")
		if q.Err() != nil || !(strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://")) {
			return nil, sdk.BadInput("want {\"url\": \"https://...\"}")
		}
		status, body, err := sdk.HTTP(sdk.Request{Method: "GET", URL: url})
		if err != nil {
			// A refusal carries the gateway's reason: the grant, the host
			// or the address, and what to change.
			return nil, errors.New("GET " + url + ": " + err.Error())
		}
		title, text := pageText(string(body))
		// Fields in alphabetical order, as the reply has always had them.
		return sdk.NewObject().Int("status", status).Str("text", text).Str("title", title).Str("url", url).Bytes(), nil
	})
}

func main() {}
