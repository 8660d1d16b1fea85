package server

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
)

// inlineScript matches the inline scripts of the docs page.
var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

// docsCSP gives the docs page (Swagger UI, served on the console's origin)
// a Content-Security-Policy: scripts only from this origin plus the page's
// own inline scripts, by hash, so an injected script does not run; Swagger
// UI's inline styles are allowed. Other /docs files (its scripts, styles,
// images) get the policy too, which does not restrict them.
func docsCSP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var hashes []string
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			for _, m := range inlineScript.FindAllSubmatch(body, -1) {
				sum := sha256.Sum256(m[1])
				hashes = append(hashes, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' "+strings.Join(hashes, " ")+
			"; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "+
			"object-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}
