"""The report's inline CSS and JavaScript (no external files: the page must work offline and from e-mail).

``ERROR_CATCHER`` runs first, in <head>: it counts script errors, failed resources, rejected promises and
``console.error`` calls and CSP blocks into ``data-js-errors`` on <html>, so a headless browser's dumped DOM shows them.
``SORTER`` makes tables with class ``sortable`` sort on a header click (by each cell's ``data-sort``) and
marks the page ready (``data-report-ready="1"``) once it has run.
"""

CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1240px;
 padding:12px 20px;color:#222;background:#fff}
h1{font-size:22px;margin:6px 0}h2{font-size:18px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:15px;margin:16px 0 6px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
dl.meta dt{color:#666}dl.meta dd{margin:0;font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
table{border-collapse:collapse;margin:6px 0 10px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f4f4f4;font-weight:600}td.text,th.text{text-align:left}
table.sortable th{cursor:pointer}table.sortable th:hover{background:#e8e8e8}
th[data-dir=asc]::after{content:" \\25B2"}th[data-dir=desc]::after{content:" \\25BC"}
.scroll{max-height:560px;overflow:auto;display:inline-block;max-width:100%}
.scroll thead th{position:sticky;top:0}
.note{color:#666;font-size:13px;margin:4px 0}caption{text-align:left}
.side-by-side{display:flex;flex-wrap:wrap;gap:0 24px}
.grid-plots{display:flex;flex-wrap:wrap;gap:6px}
svg text{font:11px system-ui,sans-serif;fill:#333}svg .svg-title{font-weight:600;font-size:12px}
svg .tick{font-size:10px;fill:#666}svg .axis{font-size:11px}svg .legend{font-size:10px}
svg .grid{stroke:#e4e4e4;stroke-width:1}svg .plot-bg{fill:#fcfcfc;stroke:#bbb}
.legend-list{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;margin:2px 0 4px}
.sw{display:inline-block;width:12px;height:12px;vertical-align:-2px;margin-right:4px;border:1px solid #0003}
.frames{display:flex;flex-wrap:wrap;gap:6px}.frames figure{margin:0}
.frames figcaption{font-size:12px;color:#555}
.bad{color:#b00020}
"""

ERROR_CATCHER = """
(function(){var root=document.documentElement;root.setAttribute('data-js-errors','0');
function note(msg){root.setAttribute('data-js-errors',String(Number(root.getAttribute('data-js-errors'))+1));
root.setAttribute('data-js-last-error',String(msg).slice(0,300));}
window.addEventListener('error',function(e){
note(e.message||('failed to load '+((e.target&&e.target.tagName)||'resource')));},true);
document.addEventListener('securitypolicyviolation',function(e){note('blocked by CSP: '+e.blockedURI);});
window.addEventListener('unhandledrejection',function(e){note('unhandled rejection: '+e.reason);});
var original=console.error;console.error=function(){note(Array.prototype.join.call(arguments,' '));
return original.apply(console,arguments);};})();
"""

SORTER = """
(function(){function key(cell){var v=cell.getAttribute('data-sort');return v===null?cell.textContent:v;}
Array.prototype.forEach.call(document.querySelectorAll('table.sortable'),function(table){
var heads=table.tHead.rows[0].cells;Array.prototype.forEach.call(heads,function(th,col){
th.addEventListener('click',function(){var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
var asc=th.getAttribute('data-dir')!=='asc';
Array.prototype.forEach.call(heads,function(h){h.removeAttribute('data-dir');});
th.setAttribute('data-dir',asc?'asc':'desc');
rows.sort(function(a,b){var x=key(a.cells[col]),y=key(b.cells[col]);var nx=parseFloat(x),ny=parseFloat(y);
var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:String(x).localeCompare(String(y));return asc?c:-c;});
rows.forEach(function(r){body.appendChild(r);});});});table.classList.add('sortable-ready');});
document.documentElement.setAttribute('data-report-ready','1');})();
"""

# everything inline, nothing fetched: a page that tries to load anything else is blocked (and counted as an error)
CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                           "script-src 'unsafe-inline'")
