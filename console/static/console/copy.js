/* Copy buttons of the console: <button data-copy-target="ID" hidden> copies the text of #ID.
   Without JavaScript the buttons stay hidden and the text stays selectable. */
(function () {
  "use strict";
  function textOf(node) {
    return node.tagName === "INPUT" || node.tagName === "TEXTAREA" ? node.value : node.textContent;
  }
  function selectNode(node) {
    if (node.select) { node.select(); return; }
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  function init() {
    document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
      var target = document.getElementById(button.getAttribute("data-copy-target"));
      if (!target) { return; }
      var label = button.textContent;
      button.hidden = false;
      button.addEventListener("click", function () {
        function say(text) {
          button.textContent = text;
          window.setTimeout(function () { button.textContent = label; }, 2000);
        }
        function fallback() {
          selectNode(target);
          var ok = false;
          try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
          say(ok ? button.getAttribute("data-copied") : button.getAttribute("data-failed"));
        }
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(textOf(target)).then(function () {
            say(button.getAttribute("data-copied"));
          }, fallback);
        } else {
          fallback();
        }
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
