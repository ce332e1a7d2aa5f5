package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/cellgate/cellgate/flags"
)

// OFREP on the data plane: browsers reach only the edge, so evaluations
// are answered here under Options.OFREPPrefix (SDKs append the
// "/ofrep/v1/…" part to their base URL). Without a targetingKey in the
// evaluation context the request's own sticky key is used — the very key
// its proxied requests are assigned by — so an SDK in a browser sees the
// variants its requests carry. Evaluations are answered by cellgate, never
// forwarded, and not recorded for any cell or variant.

const ofrepPath = "/ofrep/v1/evaluate/flags"

// isOFREP reports whether the request's path is under prefix's OFREP
// endpoints.
func (p *Proxy) isOFREP(ctx *fasthttp.RequestCtx, prefix string) bool {
	if p.hooks.OFREP == nil {
		return false
	}
	path := ctx.Path()
	if len(path) < len(prefix)+len(ofrepPath) || string(path[:len(prefix)]) != prefix {
		return false
	}
	rest := path[len(prefix):]
	return string(rest) == ofrepPath || bytes.HasPrefix(rest, []byte(ofrepPath+"/"))
}

// serveOFREP answers one evaluation and releases st. key is the request's
// sticky key (nil: none); cookie says st.keyBuf holds a generated one,
// which the response then sets, as a proxied response would.
func (p *Proxy) serveOFREP(ctx *fasthttp.RequestCtx, st *reqState, key []byte, cookie bool) {
	defer st.release()
	if cookie {
		key = st.keyBuf
		p.setCookie(ctx, st.set.opts.CookieName, st.keyBuf)
	}
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		ctx.Error(`{"errorCode":"GENERAL","errorDetails":"OFREP evaluations are POST"}`, fasthttp.StatusMethodNotAllowed)
		ctx.SetContentType("application/json")
		return
	}
	rest := ctx.Path()[len(st.set.opts.OFREPPrefix)+len(ofrepPath):]
	var ov *flags.Override
	if p.readOverride(ctx, st, peerAddr(ctx)) {
		ov = &st.override // TARGETING_MATCH, as the request path would serve it
	}
	body := ctx.Request.Body()
	var status int
	var out []byte
	if len(rest) == 0 {
		var etag string
		status, etag, out = p.hooks.OFREP.EvaluateAllOverridden(body, peekFold(&ctx.Request.Header, "If-None-Match", hdrIfNoneMatch), key, ov)
		if etag != "" {
			ctx.Response.Header.Set("ETag", etag)
		}
	} else {
		status, out = p.hooks.OFREP.EvaluateOverridden(string(rest[1:]), body, key, ov)
	}
	ctx.SetStatusCode(status)
	if out != nil {
		ctx.SetContentType("application/json")
		ctx.SetBody(out)
	}
}

var hdrIfNoneMatch = []byte("If-None-Match")
