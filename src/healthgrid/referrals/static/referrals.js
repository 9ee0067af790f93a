// Referral pages: progressive help only; every page works without it.
(function () {
  // The form: choosing a hospital, department or doctor refreshes the departments, doctors
  // and reserved places (presses the form's own "refresh" button).
  document.querySelectorAll("select[data-refresh]").forEach(function (select) {
    select.addEventListener("change", function () {
      var button = select.form && select.form.querySelector("button[data-refresh-button]");
      if (button) { button.click(); }
    });
  });
  // The print view's button.
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
