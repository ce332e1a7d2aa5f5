package cellgate

import (
	"bytes"
	"fmt"
	"os"
	"slices"

	"github.com/cellgate/cellgate/balancer"
	"github.com/cellgate/cellgate/configs"
	"github.com/cellgate/cellgate/proxy"
	"github.com/cellgate/cellgate/proxy/frontdoor"
	"github.com/cellgate/cellgate/slo"
)

// proxyOptions derives the data plane's options from a validated config.
func proxyOptions(c *configs.Config) (proxy.Options, error) {
	o := proxy.DefaultOptions()
	o.Addr = c.Listen.Addr
	o.ReadTimeout = c.Listen.ReadTimeout.Duration
	o.WriteTimeout = c.Listen.WriteTimeout.Duration
	o.IdleTimeout = c.Listen.IdleTimeout.Duration
	o.MaxRequestBody = c.Listen.MaxRequestBody
	o.MaxConns = c.Listen.MaxConns
	o.MaxConnsDefault = c.Listen.MaxConns == configs.DefaultMaxConns
	fd := frontDoorConfig(c)
	o.ReadBufferSize = fd.MaxRequestLine + fd.MaxHeaderBytes
	o.DrainTimeout = c.Listen.DrainTimeout.Duration
	o.TunnelIdleTimeout = c.Listen.TunnelIdleTimeout.Duration
	o.TunnelDrain = c.Routing.TunnelDrain.Duration
	o.Tracing = proxy.Tracing{Generate: c.Tracing.Generate, Sample: c.Tracing.Sample}
	o.ConnectTimeout = c.Upstream.ConnectTimeout.Duration
	o.UpstreamReadTimeout = c.Upstream.ResponseTimeout.Duration
	o.MaxConnsPerEndpoint = c.Upstream.MaxConnsPerEndpoint
	o.MaxIdleConnDuration = c.Upstream.IdleTimeout.Duration
	o.EjectAfter = c.Upstream.EjectAfter
	o.EjectBackoff = c.Upstream.EjectBackoff.Duration
	o.MaxEjectionPercent = c.Upstream.MaxEjectionPercent
	o.FailoverPanic = c.Routing.FailoverPanic
	o.ResponseHeaders = c.Routing.ResponseHeaders
	o.SetCookie = c.Routing.SetCookie
	o.CookieName = c.Routing.CookieName
	o.OFREPPrefix = c.FlagSettings.OFREPPrefix
	o.StickyKey = nil
	for _, s := range c.Routing.StickyKey {
		src, err := balancer.ParseSource(s)
		if err != nil {
			return o, fmt.Errorf("routing.sticky_key: %w", err)
		}
		o.StickyKey = append(o.StickyKey, src)
	}
	o.PinMemory = c.Routing.PinMemory
	if c.Routing.PinIdle.Duration > 0 {
		o.PinIdle = c.Routing.PinIdle.Duration
	}
	if f := c.Routing.PinSecretFile; f != "" {
		secret, err := os.ReadFile(f)
		if err != nil {
			return o, fmt.Errorf("routing.pin_secret_file: %w", err)
		}
		if len(bytes.TrimSpace(secret)) < 16 {
			return o, fmt.Errorf("routing.pin_secret_file %s: want at least 16 bytes of secret", f)
		}
		o.PinSecret = bytes.TrimSpace(secret)
	}
	o.H2C = c.Listen.H2C
	o.Core = proxy.ResolveCore(c.Listen.Core, c.Listen.TLSCert != "")
	o.GRPCErrorCodes = nil // the default set
	if c.SLO.GRPCErrorCodes != nil {
		o.GRPCErrorCodes = []int{}
		for _, name := range c.SLO.GRPCErrorCodes {
			o.GRPCErrorCodes = append(o.GRPCErrorCodes, configs.GRPCCodes[name])
		}
	}
	o.TrustedProxies = nil
	for _, s := range c.Routing.TrustedProxies {
		p, err := configs.ParsePrefix(s)
		if err != nil {
			return o, fmt.Errorf("routing.trusted_proxies: %w", err)
		}
		o.TrustedProxies = append(o.TrustedProxies, p)
	}
	return o, nil
}

// frontDoorConfig derives the strict request validator's limits.
func frontDoorConfig(c *configs.Config) frontdoor.Config {
	fd := frontdoor.DefaultConfig()
	fd.MaxHeaderBytes = c.Listen.MaxHeaderBytes
	return fd
}

// cellSpecs lists the config's cells for the proxy, with weights taken from
// live where a cell has one (a rollout's or an operator's), else the config.
func cellSpecs(c *configs.Config, live map[string]float64) []proxy.CellSpec {
	out := make([]proxy.CellSpec, len(c.Cells))
	for i, cell := range c.Cells {
		w := cell.Weight
		if v, ok := live[cell.Name]; ok {
			w = v
		}
		out[i] = proxy.CellSpec{Name: cell.Name, Version: cell.Version, Endpoints: slices.Clone(cell.Endpoints), Weight: w,
			Health: healthCheck(cell.Health), Protocol: cell.Protocol, TLS: upstreamTLS(cell.TLS)}
	}
	return out
}

// upstreamTLS derives a cell's upstream TLS (nil: plain TCP).
func upstreamTLS(t *configs.CellTLS) *proxy.UpstreamTLS {
	if t == nil {
		return nil
	}
	return &proxy.UpstreamTLS{CAFile: t.CAFile, ServerName: t.ServerName, CertFile: t.CertFile, KeyFile: t.KeyFile,
		InsecureSkipVerify: t.InsecureSkipVerify}
}

// healthCheck derives a cell's active check (nil: passive only).
func healthCheck(h *configs.Health) *proxy.HealthCheck {
	if h == nil {
		return nil
	}
	d := h.WithDefaults()
	return &proxy.HealthCheck{Path: d.Path, Interval: d.Interval.Duration, Timeout: d.Timeout.Duration,
		Unhealthy: d.Unhealthy, Healthy: d.Healthy, Expect: d.Expect}
}

// configWeights maps each configured cell to its configured weight.
func configWeights(c *configs.Config) map[string]float64 {
	w := make(map[string]float64, len(c.Cells))
	for _, cell := range c.Cells {
		w[cell.Name] = cell.Weight
	}
	addFlagWeights(w, c)
	return w
}

// sloConfig derives the SLO engine's config.
func sloConfig(c *configs.Config) slo.Config {
	s := slo.DefaultConfig()
	s.Availability = c.SLO.Availability
	s.LatencyThreshold = c.SLO.LatencyThreshold.Duration
	s.LatencyObjective = c.SLO.LatencyObjective
	s.TTFBThreshold = c.SLO.TTFBThreshold.Duration
	s.TTFBObjective = c.SLO.TTFBObjective
	s.FastBurn = slo.BurnRule{Long: c.SLO.FastBurn.Long.Duration, Short: c.SLO.FastBurn.Short.Duration, Rate: c.SLO.FastBurn.Rate}
	s.SlowBurn = slo.BurnRule{Long: c.SLO.SlowBurn.Long.Duration, Short: c.SLO.SlowBurn.Short.Duration, Rate: c.SLO.SlowBurn.Rate}
	s.MinRequests = c.SLO.MinRequests
	s.FailRatio = c.SLO.FailRatio
	s.Interval = c.SLO.Interval.Duration
	return s
}
