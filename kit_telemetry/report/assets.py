"""The HTML report's inline assets: its stylesheet and its one script.

The page loads nothing from anywhere, so both are inlined as strings. The script only adds
a span-details panel (click a waterfall row, or open ``page.html#span=<trace id>-<span
id>``); every figure is already in the markup.
"""

from __future__ import annotations

__all__ = ["CSS", "JS"]

CSS = """
:root{--run:#7c5cff;--turn:#9aa3b2;--llm:#2f7ff5;--tool:#16a06a;--other:#d4a017;--err:#e0383e;
--ink:#1d2330;--mute:#667085;--line:#e4e7ec;--bg:#f7f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
background:var(--bg)}
main{max-width:1240px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:22px;margin:0 0 4px;word-break:break-all}
h2{font-size:18px;margin:28px 0 6px}
h3{font-size:15px;margin:0;display:inline}
h4{margin:14px 0 6px;font-size:13px;color:var(--mute);text-transform:uppercase;letter-spacing:.04em}
.meta{color:var(--mute);margin:0 0 10px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:8px 14px;
min-width:120px}
.card .k{color:var(--mute);font-size:12px}.card .v{font-size:18px;font-weight:600}
#charts{display:grid;grid-template-columns:1fr 1fr;gap:16px;margin:16px 0}
figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px}
figcaption{font-weight:600;margin-bottom:6px}
svg{width:100%;height:auto;display:block}
svg text{font-size:11px;fill:var(--mute)}
svg .grid{stroke:var(--line)}svg .axis-line{stroke:#98a2b3}
svg .cost-line{fill:none;stroke:var(--llm);stroke-width:2}
svg .cost-point{fill:#fff;stroke:var(--llm);stroke-width:2}
svg .model-bar rect{fill:var(--llm)}svg .model-bar.unpriced rect{fill:#c2c8d2}
svg .model-bar .label{fill:var(--ink)}
.scroll{overflow-x:auto;margin:4px 0}
table{border-collapse:collapse;background:#fff;border:1px solid var(--line);font-size:12.5px;
min-width:100%}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
td.text{white-space:normal;overflow-wrap:anywhere;min-width:130px;max-width:300px}
thead th{background:#f0f2f5;font-weight:600;white-space:normal;vertical-align:bottom}
.num{text-align:right;font-variant-numeric:tabular-nums}
tr.total-row{font-weight:600;background:#fafbfc}
tr.run-row.error td:first-child{border-left:3px solid var(--err)}
.session{margin-top:26px;padding-top:8px;border-top:2px solid var(--line)}
.run{background:#fff;border:1px solid var(--line);border-radius:8px;margin:12px 0;padding:8px 12px}
.run.is-error{border-left:4px solid var(--err)}
.run summary{cursor:pointer;padding:4px 0}
.run small{color:var(--mute);font-weight:400;margin-left:6px}
.badge{display:inline-block;margin-left:8px;padding:0 6px;border-radius:4px;font-size:11px;
color:#fff;background:var(--err);vertical-align:middle}
.run-facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0 10px;
font-size:12.5px}
.run-facts dt{color:var(--mute)}.run-facts dd{margin:0;word-break:break-all}
.waterfall{border:1px solid var(--line);border-radius:6px;overflow:hidden;font-size:12px}
.wf-row,.wf-axis{display:grid;grid-template-columns:300px 1fr 72px;align-items:center;
min-height:22px;border-bottom:1px solid #f0f2f5}
.wf-row{cursor:pointer}.wf-row:hover,.wf-row.selected{background:#eef4ff}
.wf-name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;padding-right:6px}
.wf-track{position:relative;height:22px;margin:0 8px}
.wf-bar{position:absolute;top:5px;height:12px;border-radius:3px;background:var(--other)}
.wf-time{text-align:right;padding-right:8px;color:var(--mute);font-variant-numeric:tabular-nums}
.wf-axis{background:#f7f8fa;color:var(--mute);font-size:11px}
.wf-axis .tick{position:absolute;top:4px;transform:translateX(-50%);white-space:nowrap}
.wf-axis .tick:first-child{transform:none}.wf-axis .tick:last-child{transform:translateX(-100%)}
.cat-run .wf-bar,.key.cat-run i{background:var(--run)}
.cat-turn .wf-bar,.key.cat-turn i{background:var(--turn)}
.cat-llm .wf-bar,.key.cat-llm i{background:var(--llm)}
.cat-tool .wf-bar,.key.cat-tool i{background:var(--tool)}
.cat-other .wf-bar,.key.cat-other i{background:var(--other)}
.wf-row.is-error .wf-bar{outline:2px solid var(--err);outline-offset:1px;
background-image:repeating-linear-gradient(45deg,transparent 0 4px,rgba(224,56,62,.55) 4px 7px)}
.key.is-error i{background:#fff;outline:2px solid var(--err)}
.err-mark{color:var(--err);font-weight:700;margin-right:4px}
.legend{margin:18px 0 0;color:var(--mute)}
.key{margin-right:14px;white-space:nowrap}
.key i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;
vertical-align:-1px}
#problems ul,.notes{background:#fff5f5;border:1px solid #f5c2c4;border-radius:8px;
padding:8px 8px 8px 28px;word-break:break-all}
.empty{color:var(--mute)}
#span-details{position:fixed;right:16px;bottom:16px;width:420px;max-height:60vh;overflow:auto;
background:#fff;border:1px solid #98a2b3;border-radius:8px;box-shadow:0 8px 24px rgba(0,0,0,.15);
padding:10px 14px;font-size:12px}
#span-details dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:8px 0 0}
#span-details dt{color:var(--mute)}#span-details dd{margin:0;word-break:break-all}
#span-details .close{float:right;border:0;background:none;font-size:18px;cursor:pointer}
@media (max-width:900px){#charts{grid-template-columns:1fr}
.wf-row,.wf-axis{grid-template-columns:180px 1fr 60px}}
"""

# Builds the details panel with textContent only: attribute values are trace data.
JS = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("kit-span-data").textContent);
  var panel = document.getElementById("span-details");
  var rows = document.querySelectorAll(".wf-row");
  function fmt(ms) {
    return ms < 1000 ? ms.toFixed(0) + " ms" : (ms / 1000).toFixed(2) + " s";
  }
  function add(dl, key, value) {
    var dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = key;
    dd.textContent = typeof value === "string" ? value : JSON.stringify(value);
    dl.appendChild(dt);
    dl.appendChild(dd);
  }
  function select(key, scroll) {
    var span = Object.prototype.hasOwnProperty.call(data, key) ? data[key] : null;
    if (!span) { return false; }
    rows.forEach(function (row) {
      row.classList.toggle("selected", row.getAttribute("data-span-key") === key);
      if (scroll && row.getAttribute("data-span-key") === key) {
        row.scrollIntoView({block: "center"});
      }
    });
    panel.querySelector("h3").textContent = span.name;
    var dl = panel.querySelector("dl");
    dl.textContent = "";
    add(dl, "kind", span.category);
    add(dl, "run", span.run);
    add(dl, "starts at", "+" + fmt(span.offset_ms));
    add(dl, "duration", fmt(span.duration_ms));
    if (span.error) { add(dl, "error", span.error); }
    Object.keys(span.attributes).sort().forEach(function (name) {
      add(dl, name, span.attributes[name]);
    });
    panel.setAttribute("data-span-key", key);
    panel.hidden = false;
    return true;
  }
  rows.forEach(function (row) {
    function pick() {
      var key = row.getAttribute("data-span-key");
      if (select(key, false) && history.replaceState) {
        history.replaceState(null, "", "#span=" + key);
      }
    }
    row.addEventListener("click", pick);
    row.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); }
    });
  });
  panel.querySelector(".close").addEventListener("click", function () {
    panel.hidden = true;
    rows.forEach(function (row) { row.classList.remove("selected"); });
  });
  var match = /^#span=([0-9a-zA-Z_-]+)$/.exec(location.hash);
  if (match) { select(match[1], true); }
  document.documentElement.setAttribute("data-js", "ready");
})();
"""
