// Lets saved ipywidgets render offline with MathJax 3 (loaded before require.js and the
// vendored @jupyter-widgets/html-manager, see tools/vendor.py):
// 1. require.js resolves the widget modules to _static/vendor/html-manager/, so the
//    fonts and chunks it loads come from this site and not from a path relative to the page;
// 2. the manager typesets widget labels with MathJax 2's MathJax.Hub.Queue; MathJax 3 has
//    typesetPromise instead, so a small Hub is added to the MathJax 3 object when it appears.
(function () {
  "use strict";
  var staticBase = document.currentScript.src.replace(/[^/]*$/, "");
  if (typeof window.require === "undefined") {
    // Every named widget module resolves into the vendored folder: the bundles compute the
    // URL of their fonts from their own module URL, which must therefore lie next to them.
    var vendored = staticBase + "vendor/html-manager";
    window.require = {
      paths: {
        "@jupyter-widgets/html-manager/dist": vendored,
        "@jupyter-widgets/html-manager": vendored + "/html-manager",
        "@jupyter-widgets/controls": vendored + "/controls",
        "@jupyter-widgets/base": vendored + "/base",
      },
    };
  }
  var mathjax = window.MathJax;
  function addHub(value) {
    if (value && typeof value === "object" && value.version && !value.Hub) {
      value.Hub = {
        Queue: function (job) {
          var element = Array.isArray(job) ? job[2] : undefined;
          if (typeof value.typesetPromise === "function") {
            value.typesetPromise(element ? [element] : undefined);
          }
        },
      };
    }
    return value;
  }
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    enumerable: true,
    get: function () { return mathjax; },
    set: function (value) { mathjax = addHub(value); },
  });
})();
