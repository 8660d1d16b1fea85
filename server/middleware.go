package server

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/names"
)

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID accepts a well-formed X-Request-Id from the caller or makes
// one, and returns it on the response.
func requestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			id := c.Request().Header.Get(echo.HeaderXRequestID)
			if !requestIDRE.MatchString(id) {
				var b [12]byte
				_, _ = rand.Read(b[:])
				id = hex.EncodeToString(b[:])
			}
			c.Response().Header().Set(echo.HeaderXRequestID, id)
			return next(c)
		}
	}
}

// accessLog logs one line per request with its request id, the caller
// (key id or JWT subject, never the key), the tenant, project and operation
// concerned; no header or body.
func accessLog(logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			status := c.Response().Status
			level := slog.LevelInfo
			if strings.HasPrefix(c.Request().URL.Path, "/docs/") || c.Path() == "/healthz" || c.Path() == "/readyz" {
				level = slog.LevelDebug
			}
			ctx := c.Request().Context()
			if !logger.Enabled(ctx, level) {
				return nil
			}
			attrs := make([]slog.Attr, 0, 9)
			attrs = append(attrs,
				slog.String("method", c.Request().Method), slog.String("route", c.Path()), slog.Int("status", status),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
				slog.String("actor", api.PrincipalActor(c)),
			)
			if t := c.Param("tenant"); t != "" {
				attrs = append(attrs, slog.String("tenant", names.Upper(t)))
			}
			if p := c.Param("project"); p != "" {
				attrs = append(attrs, slog.String("project", names.Upper(p)))
			}
			if id := api.AuditNoteOf(c).OperationID; id != "" {
				attrs = append(attrs, slog.String("operation_id", id))
			}
			logger.LogAttrs(ctx, level, "request", attrs...)
			return nil
		}
	}
}

// secureHeaders sets response headers every answer should carry: no MIME
// sniffing, no referrer, no framing, no caching of API answers, a strict
// content policy for everything but the docs page, and HSTS over TLS.
func secureHeaders(https bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "DENY")
			if !strings.HasPrefix(c.Request().URL.Path, "/docs") {
				h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
			}
			if https {
				h.Set("Strict-Transport-Security", "max-age=31536000")
			}
			if strings.HasPrefix(c.Request().URL.Path, "/v1/") {
				h.Set("Cache-Control", "no-store")
			}
			return next(c)
		}
	}
}

// maxHeaderBytes is the documented limit on a request's line and headers.
const maxHeaderBytes = 32 << 10

// errHeadersTooLarge answers requests over maxHeaderBytes.
var errHeadersTooLarge = &api.Error{Status: http.StatusRequestHeaderFieldsTooLarge, Title: "Request headers too large",
	Detail: "The request line and headers exceed 32 KiB."}

// headerLimit refuses a request whose line and headers, as sent, exceed
// limit bytes with a 431 problem. net/http itself is set to accept more, so
// that only requests far beyond the limit get its plain-text answer.
func headerLimit(limit int) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len("Host: \r\n") + len(r.Host)
			for name, values := range r.Header {
				for _, v := range values {
					n += len(name) + len(v) + 4 // ": " and CRLF
				}
			}
			if n > limit {
				return errHeadersTooLarge
			}
			return next(c)
		}
	}
}

// notFoundAsProblem serves h (a file server, such as the docs page's
// assets), turning its "404 page not found" text into the API's 404
// problem.
func notFoundAsProblem(h http.Handler) echo.HandlerFunc {
	return func(c echo.Context) error {
		w := &notFoundCatcher{ResponseWriter: c.Response()}
		h.ServeHTTP(w, c.Request())
		if w.notFound {
			return echo.ErrNotFound
		}
		return nil
	}
}

// notFoundCatcher swallows a 404 answer (status and body) so that the
// caller can answer it instead.
type notFoundCatcher struct {
	http.ResponseWriter
	notFound, wrote bool
}

func (w *notFoundCatcher) WriteHeader(status int) {
	if status == http.StatusNotFound && !w.wrote {
		w.notFound = true
		return
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *notFoundCatcher) Write(b []byte) (int, error) {
	if w.notFound {
		return len(b), nil
	}
	w.wrote = true
	return w.ResponseWriter.Write(b)
}
