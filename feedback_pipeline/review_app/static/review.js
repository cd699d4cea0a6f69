// Review App keyboard shortcuts and the growing text lists. No inline script anywhere: CSP allows only this file.
(function () {
  "use strict";

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select") return true;
    if (tag !== "input") return target.isContentEditable === true;
    var type = (target.type || "text").toLowerCase();
    return ["radio", "checkbox", "button", "submit"].indexOf(type) < 0;
  }

  function setupTextLists(form) {
    form.querySelectorAll(".text-list").forEach(function (list) {
      var button = list.parentElement.querySelector(".add-entry");
      var max = parseInt(list.dataset.maxCount || "0", 10);
      function refresh() {
        var count = list.querySelectorAll("input").length;
        button.hidden = max > 0 && count >= max;
      }
      button.addEventListener("click", function () {
        var input = document.createElement("input");
        input.type = "text";
        input.name = list.dataset.field;
        if (list.dataset.maxLength) input.maxLength = parseInt(list.dataset.maxLength, 10);
        list.appendChild(input);
        input.focus();
        refresh();
      });
      refresh();
    });
  }

  function optionQuestions(form) {
    return Array.prototype.slice.call(form.querySelectorAll("fieldset.question")).filter(function (q) {
      return q.querySelector("input[type=radio], input[type=checkbox]");
    });
  }

  function currentQuestion(form, questions) {
    var active = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("fieldset.question") : null;
    if (active && questions.indexOf(active) >= 0) return active;
    var unanswered = questions.filter(function (q) { return !q.querySelector("input:checked"); });
    return unanswered[0] || questions[0] || null;
  }

  function pick(form, digit) {
    var questions = optionQuestions(form);
    var question = currentQuestion(form, questions);
    if (!question) return;
    var inputs = question.querySelectorAll("input[type=radio], input[type=checkbox]");
    var input = inputs[digit - 1];
    if (!input) return;
    if (input.type === "checkbox") {
      input.checked = !input.checked;
      input.focus();
      return;
    }
    input.checked = true;
    var next = questions[questions.indexOf(question) + 1];
    var target = next ? next.querySelector("input") : input;
    target.focus();
  }

  function go(id) {
    var link = document.getElementById(id);
    if (link && link.href) window.location.href = link.href;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("answer-form");
    if (!form) return;
    // A page showing a refused answer came from a POST: make reloading it a GET, not a resubmission.
    if (document.getElementById("errors")) window.history.replaceState(null, "", window.location.href);
    setupTextLists(form);
    document.addEventListener("keydown", function (event) {
      if (event.altKey || event.metaKey) return;
      var target = event.target;
      if (event.key === "Enter" && event.ctrlKey) {
        event.preventDefault();
        document.getElementById("submit").click();
        return;
      }
      if (event.key === "Enter" && target && target.tagName && target.tagName.toLowerCase() === "input" && typing(target)) {
        // Enter in a single-line field does not submit the form: it moves on to the next field.
        event.preventDefault();
        var fields = Array.prototype.slice.call(form.querySelectorAll("input:not([type=hidden]), textarea"));
        var following = fields[fields.indexOf(target) + 1];
        if (following) following.focus();
        return;
      }
      if (typing(target) || event.ctrlKey) return;
      if (event.key >= "1" && event.key <= "9") {
        event.preventDefault();
        pick(form, parseInt(event.key, 10));
      } else if (event.key === "Enter") {
        if (target && target.tagName && ["a", "button"].indexOf(target.tagName.toLowerCase()) >= 0) return;
        event.preventDefault();
        document.getElementById("submit").click();
      } else if (event.key === "s") {
        event.preventDefault();
        document.getElementById("skip").click();
      } else if (event.key === "j") {
        go("next");
      } else if (event.key === "k") {
        go("back");
      }
    });
  });
})();
