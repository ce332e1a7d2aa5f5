"use strict";
// charts.js draws a cellgate history document — {cells: {name: [points]},
// cohorts: {"flag=variant": {kind, flag, variant, points}}, decisions:
// [audit events]} as GET /v1/history and the rollout report give it — as
// three uPlot charts for the cells (each cell's weight and served share,
// its error ratio, its p99) and the same three per flag for its variants'
// cohorts (rolled-out and served share within the flag's traffic), with
// the rollouts' decisions (start, steps, approval, revert, promotion,
// abort) as vertical markers. Used by the status page (served at
// /ui/charts.js) and inlined into the report.
(function () {
  const MARKS = { start: "start", step: "step", approve: "approve", rollback: "revert",
    abort: "abort", promoted: "promoted", promote_now: "promote" };
  const COLORS = ["#2b6cb0", "#c53030", "#1f8a4c", "#b7791f", "#6b46c1", "#2c7a7b", "#d53f8c", "#4a5568"];

  function markers(decisions) {
    return (decisions || []).filter((e) => MARKS[e.action])
      .map((e) => ({ t: Date.parse(e.time) / 1000, label: MARKS[e.action] + (e.action === "step" ? " " + (e.step_percent || "") + "%" : ""), action: e.action }));
  }

  // markerPlugin draws a dashed vertical line and a label at each marker.
  function markerPlugin(marks) {
    return { hooks: { draw: [(u) => {
      const ctx = u.ctx, dpr = window.devicePixelRatio || 1;
      ctx.save();
      ctx.font = (10 * dpr) + "px sans-serif";
      marks.forEach((m, i) => {
        const x = u.valToPos(m.t, "x", true);
        if (!(x >= u.bbox.left && x <= u.bbox.left + u.bbox.width)) return;
        ctx.strokeStyle = ctx.fillStyle = (m.action === "rollback" || m.action === "abort") ? "#c53030" : "#4a5568";
        ctx.setLineDash([4 * dpr, 3 * dpr]);
        ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillText(m.label, x + 3 * dpr, u.bbox.top + (12 + 11 * (i % 3)) * dpr);
      });
      ctx.restore();
    }] } };
  }

  // columns aligns the named series' points (series: name → points) on
  // the union of their seconds; a weight is read as a part of the total
  // weight of the series drawn together.
  function columns(series, names, fields) {
    series = Object.fromEntries(names.map((n) => [n, series[n] || []]));
    const xs = [...new Set(names.flatMap((n) => series[n].map((p) => p.t)))].sort((a, b) => a - b);
    const at = new Map(xs.map((t, i) => [t, i]));
    const total = new Array(xs.length).fill(0);
    for (const n of names) for (const p of series[n]) total[at.get(p.t)] += p.weight;
    const data = [xs];
    for (const f of fields) for (const n of names) {
      const col = new Array(xs.length).fill(null);
      for (const p of series[n]) col[at.get(p.t)] = f(p, total[at.get(p.t)]);
      data.push(col);
    }
    return data;
  }

  function chart(root, title, names, fields, labels, data, unit, marks, width, flag) {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.chart = title;
    if (flag !== undefined) box.dataset.flag = flag;
    root.appendChild(box);
    const series = [{}];
    fields.forEach((_, fi) => names.forEach((n, ni) => series.push({
      label: n + labels[fi], stroke: COLORS[ni % COLORS.length], width: 1.5,
      dash: fi > 0 ? [5, 4] : undefined, spanGaps: false,
      value: (u, v) => v == null ? "—" : v.toFixed(unit === "ms" ? 1 : 2) + " " + unit,
    })));
    // The x axis reaches the last marker past the data too: a rollout's
    // report ends with its last decision, inside the last point's second.
    const lastMark = Math.max(...marks.map((m) => m.t));
    const x = { range: (u, min, max) => [min, min != null && lastMark > max ? lastMark : max] };
    return new uPlot({ title, width, height: 200, series, scales: { x }, plugins: [markerPlugin(marks)],
      axes: [{}, { values: (u, vs) => vs.map((v) => v + " " + unit) }] }, data, box);
  }

  // three draws the weight and served share, error ratio and p99 charts
  // of the named series; prefix names the group in the titles.
  function three(root, series, names, prefix, marks, width, flag) {
    const pct = (v) => 100 * v;
    const weight = (p, tw) => tw > 0 ? pct(p.weight / tw) : 0;
    chart(root, prefix + "weight (solid) and served share (dashed)", names,
      [weight, (p) => pct(p.share)], [" weight", " served"],
      columns(series, names, [weight, (p) => pct(p.share)]), "%", marks, width, flag);
    chart(root, prefix + "error ratio", names, [(p) => pct(p.error_ratio)], [""],
      columns(series, names, [(p) => p.requests > 0 ? pct(p.error_ratio) : null]), "%", marks, width, flag);
    chart(root, prefix + "p99 latency", names, [(p) => p.p99_ms], [""],
      columns(series, names, [(p) => p.requests > 0 ? p.p99_ms : null]), "ms", marks, width, flag);
  }

  // draw replaces root's charts with doc's: the cells' (drawn even when
  // there are none, unless flag cohorts are all there is) and one set per
  // flag of its cohorts. root.dataset says what was drawn (cells, cohorts,
  // points, marker actions) for tests and people alike.
  function draw(root, doc, width) {
    root.querySelectorAll(".chart").forEach((c) => c.remove());
    const cells = (doc && doc.cells) || {};
    const names = Object.keys(cells).sort();
    const cohorts = (doc && doc.cohorts) || {};
    const cohortNames = Object.keys(cohorts).sort();
    const marks = markers(doc && doc.decisions);
    width = width || Math.max(320, root.clientWidth - 20);
    if (names.length > 0 || cohortNames.length === 0) three(root, cells, names, "", marks, width);
    const byFlag = new Map();
    for (const n of cohortNames) {
      const c = cohorts[n], f = c.flag || n.split("=")[0];
      if (!byFlag.has(f)) byFlag.set(f, {});
      byFlag.get(f)[n] = c.points || [];
    }
    for (const [f, series] of byFlag) {
      three(root, series, Object.keys(series).sort(), "flag " + f + ": variant cohorts' ", marks, width, f);
    }
    root.dataset.cells = names.join(",");
    root.dataset.cohorts = cohortNames.join(",");
    root.dataset.points = String(names.reduce((s, n) => s + (cells[n] || []).length, 0));
    root.dataset.cohortPoints = String(cohortNames.reduce((s, n) => s + (cohorts[n].points || []).length, 0));
    root.dataset.markers = [...new Set(marks.map((m) => m.action))].join(",");
  }

  window.cellgateCharts = { draw };
})();
