// The book's only script. It draws the page's Mermaid diagrams as inline SVG with the
// site's own copy of Mermaid (static/mermaid.min.js, loaded before this file on pages
// that have a diagram), then marks the page ready: <body data-book-ready="true">.
// A diagram that does not parse is reported on the console (the book's tests fail on it).
(function () {
  "use strict";

  async function drawDiagrams() {
    const blocks = document.querySelectorAll(".jp-Mermaid > pre.mermaid");
    if (blocks.length) {
      if (!window.mermaid) {
        throw new Error("static/mermaid.min.js is missing: " + blocks.length + " diagram(s) not drawn");
      }
      window.mermaid.initialize({
        startOnLoad: false,
        securityLevel: "strict",
        theme: "neutral",
        fontFamily: window.getComputedStyle(document.body).fontFamily,
      });
      await window.mermaid.run({ nodes: blocks });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawDiagrams()
      .then(function () { document.body.dataset.bookReady = "true"; })
      .catch(function (error) {
        console.error("book: " + error);
        document.body.dataset.bookReady = "error";
      });
  });
})();
