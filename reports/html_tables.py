"""The reports' HTML tables: cells written by :mod:`shedding.reports.numbers`, numbers
right-aligned, a column with a negative number written with signs throughout, each table in its own
box (wrapping text, scrolling only as a last resort) and sortable by clicking a column header
(:data:`SORT_JS`).
"""

from __future__ import annotations

import html

from shedding.reports.numbers import Estimate, cell_text, ci_pair, is_number, negative, sort_value

TABLE_CSS = """
.tablebox{max-width:100%;overflow-x:auto;margin:6px 0}
table{border-collapse:collapse;font-size:0.8em}
td,th{border:1px solid #ddd;padding:3px 5px;vertical-align:top}
th{background:#f4f4f4;text-align:left;font-weight:600;cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2";font-size:0.8em}
th[aria-sort=descending]::after{content:" \\25BC";font-size:0.8em}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.text{text-align:left;overflow-wrap:anywhere}
td .ci{display:block;font-size:0.85em;color:#666}
"""

SORT_JS = """
(function(){
  function key(row, i){
    var c = row.cells[i];
    if (!c) return [2, ''];
    var v = c.getAttribute('data-v');
    if (v !== null) return [0, parseFloat(v)];
    var s = c.textContent.trim();
    return s === '\\u2014' || s === '' ? [2, ''] : [1, s];
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function(t){
    var heads = t.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function(th, i){
      th.title = 'sort by this column';
      th.addEventListener('click', function(){
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(heads, function(h){ h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function(a, b){
          var x = key(a, i), y = key(b, i);
          if (x[0] !== y[0]) return x[0] - y[0];
          if (x[0] === 2) return 0;
          var c = x[0] === 0 ? x[1] - y[1]
            : String(x[1]).localeCompare(String(y[1]), undefined, {numeric: true});
          return asc ? c : -c;
        });
        rows.forEach(function(r){ body.appendChild(r); });
      });
    });
  });
})();
"""


def header(key: str) -> str:
    """A column's heading as a person writes it: ``excess_peak`` is ``excess peak``."""
    return key.replace("_", " ")


def _text(v: object, signed: bool) -> str:
    """A cell's escaped text; an estimate's interval on a line of its own below the value."""
    if isinstance(v, Estimate):
        value, ci = ci_pair(v.value, v.low, v.high, signed)
        if value and ci:
            return f'{html.escape(value)}<span class="ci"> {html.escape(ci)}</span>'
    return html.escape(cell_text(v, signed))


def _cell(v: object, signed: bool) -> str:
    """One ``<td>``: a number right-aligned with its value for sorting, text left-aligned."""
    text = _text(v, signed)
    if not is_number(v):
        return f'<td class="text">{text}</td>'
    s = sort_value(v)
    data = "" if s is None else f' data-v="{s!r}"'
    return f'<td class="num"{data}>{text}</td>'


def html_table(
    rows: list[dict[str, object]],
    keys: list[str] | None = None,
    signed: set[str] | None = None,
) -> str:
    """Rows of dicts as a sortable HTML table in its own box (columns: ``keys``, else the first
    row's keys; headings with spaces for underscores). Each cell is written by
    :func:`shedding.reports.numbers.cell_text`; a column in ``signed``, or holding a negative
    number, carries a sign on every number. Empty rows: an empty string."""
    if not rows:
        return ""
    keys = keys or list(rows[0])
    with_sign = set(signed or ()) | {k for k in keys if any(negative(r.get(k)) for r in rows)}
    head = "".join(f"<th>{html.escape(header(k))}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(_cell(r.get(k), k in with_sign) for k in keys) + "</tr>" for r in rows
    )
    return (
        f'<div class="tablebox"><table class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )
