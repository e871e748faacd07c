// The definition's graph on a page: every <pre class="mermaid-source"> holds Mermaid text
// (made by cli/web/graph.py); this renders it with the Mermaid bundled in the package
// (static/vendor/mermaid.min.js, loaded here on first use) into an SVG placed after the
// <pre>, then hides the <pre>. The SVG is what mermaid.render returns (strict security
// level: labels are sanitized, no click handlers), parsed by an inert DOMParser and moved
// into the page: no page data ever goes through innerHTML. On an error the <pre> stays
// visible, with the reason as text beside it.
//
// window.procctlGraph.render(root?) renders the sources under `root` (default: the
// document) that are not rendered yet; call it after putting a new <pre> in the page.
// A <pre> whose text changed is rendered again (its old SVG is replaced).
(function () {
  "use strict";

  var script = document.currentScript;
  var mermaidUrl = new URL("vendor/mermaid.min.js", script && script.src ? script.src
    : new URL("/static/", location.href)).href;
  var loading = null;
  var counter = 0;

  function loadMermaid() {
    if (window.mermaid) return Promise.resolve(window.mermaid);
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var tag = document.createElement("script");
        tag.src = mermaidUrl;
        tag.onload = function () {
          if (window.mermaid) resolve(window.mermaid);
          else reject(new Error("mermaid.min.js loaded but defined no mermaid"));
        };
        tag.onerror = function () { reject(new Error("could not load " + mermaidUrl)); };
        document.head.appendChild(tag);
      });
    }
    return loading;
  }

  var initialized = false;
  function setUp(mermaid) {
    if (!initialized) {
      mermaid.initialize({
        startOnLoad: false,
        securityLevel: "strict",
        suppressErrorRendering: true,
        maxTextSize: 500000,
        theme: "default",
        flowchart: { useMaxWidth: true },
      });
      initialized = true;
    }
    return mermaid;
  }

  // The element after `pre` that holds its rendering (made on first use).
  function holderOf(pre) {
    var next = pre.nextElementSibling;
    if (next && next.classList.contains("mermaid-graph")) return next;
    var holder = document.createElement("div");
    holder.className = "mermaid-graph";
    pre.after(holder);
    return holder;
  }

  function showError(pre, error) {
    var holder = holderOf(pre);
    var line = document.createElement("p");
    line.className = "mermaid-error";
    line.textContent = "The graph could not be drawn: " + (error && error.message ? error.message : String(error));
    holder.replaceChildren(line);
    pre.hidden = false;
    pre.dataset.rendered = "error";
  }

  async function renderOne(mermaid, pre) {
    var text = pre.textContent;
    if (pre.dataset.renderedText === text) return;
    pre.dataset.renderedText = text;
    var id = "procctl-graph-" + (++counter);
    try {
      var result = await mermaid.render(id, text);
      var parsed = new DOMParser().parseFromString(result.svg, "text/html");
      var svg = parsed.body.querySelector("svg");
      if (!svg) throw new Error("Mermaid gave no SVG");
      svg = document.importNode(svg, true);
      svg.setAttribute("role", "img");
      if (pre.getAttribute("aria-label")) svg.setAttribute("aria-label", pre.getAttribute("aria-label"));
      holderOf(pre).replaceChildren(svg);
      pre.hidden = true;
      pre.dataset.rendered = "svg";
    } catch (error) {
      showError(pre, error);
    } finally {
      // mermaid.render may leave its scratch element behind after an error
      var scratch = document.getElementById("d" + id);
      if (scratch) scratch.remove();
    }
  }

  // Renders run one after another: mermaid.render is not safe to run concurrently.
  var queue = Promise.resolve();
  function render(root) {
    queue = queue.then(function () { return renderAll(root); });
    return queue;
  }

  async function renderAll(root) {
    var sources = (root || document).querySelectorAll("pre.mermaid-source");
    if (!sources.length) return;
    var mermaid;
    try {
      mermaid = setUp(await loadMermaid());
    } catch (error) {
      sources.forEach(function (pre) { showError(pre, error); });
      return;
    }
    for (var i = 0; i < sources.length; i++) await renderOne(mermaid, sources[i]);
  }

  window.procctlGraph = { render: render };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { render(); });
  } else {
    render();
  }
})();
