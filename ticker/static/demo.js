// The demo page at /: show the embed snippet for this very service, and copy it.
// Loaded as an external module: the page's CSP allows no inline script.

const snippet = document.getElementById("snippet");
const copy = document.getElementById("copy");

if (snippet) {
  const origin = window.location.origin;
  snippet.textContent =
    `<script type="module" src="${origin}/widget.js"></script>\n` +
    `<breaking-ticker src="${origin}" channel="en" region="europe"></breaking-ticker>`;
}

if (snippet && copy && navigator.clipboard) {
  copy.hidden = false;
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(snippet.textContent);
      copy.textContent = "Copied";
    } catch {
      copy.textContent = "Select and copy";
    }
    setTimeout(() => {
      copy.textContent = "Copy";
    }, 2000);
  });
}
