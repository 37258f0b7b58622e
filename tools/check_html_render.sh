#!/bin/sh
# check_html_render.sh COMPARISON.html: renders rl compare's self-contained
# page with headless Chromium (no network) and checks that the rendered DOM
# has its tables and that every image is an inline data URI that loaded
# (naturalWidth > 0). Not a test: it needs chromium (apt-get install chromium).
set -eu
page=${1:?usage: $0 comparison.html}
[ -f "$page" ] || { echo "$page: no such file" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "no chromium on PATH (apt-get install -y chromium)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A copy with a script that, once the images have loaded, writes what it
# found into the DOM that --dump-dom prints.
{
	cat "$page"
	cat <<'JS'
<script>
window.addEventListener('load', function () {
  var imgs = document.images, bad = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].src.indexOf('data:image/png;base64,') !== 0 || imgs[i].naturalWidth === 0) bad++;
  }
  var d = document.createElement('pre');
  d.id = 'render-check';
  d.textContent = 'tables=' + document.getElementsByTagName('table').length + ' images=' + imgs.length + ' broken=' + bad;
  document.body.appendChild(d);
});
</script>
JS
} > "$tmp/page.html"
"$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir="$tmp/profile" \
	--virtual-time-budget=5000 --dump-dom "file://$tmp/page.html" 2>"$tmp/stderr" > "$tmp/dom.html" || {
	cat "$tmp/stderr" >&2
	exit 1
}
line=$(grep -o 'tables=[0-9]* images=[0-9]* broken=[0-9]*' "$tmp/dom.html" || true)
[ -n "$line" ] || { echo "chromium rendered no check line (page did not load?)" >&2; exit 1; }
echo "$page: $line"
case "$line" in
*tables=0*) echo "no table rendered" >&2; exit 1 ;;
*" broken=0") ;;
*) echo "some images did not render" >&2; exit 1 ;;
esac
# External references would have been fetched: there must be none.
if grep -Eo '(src|href)="[^"d][^"]*"' "$page" | grep -v '^src="data:' | head -1 | grep -q .; then
	echo "$page refers to files or sites outside itself" >&2
	exit 1
fi
