// OAuth 2.0 Form Post Response Mode: send the response on to the client at once.
// A file, not an inline script, so a strict Content-Security-Policy allows it.
document.addEventListener("DOMContentLoaded", function () {
  document.getElementById("oidc-form-post").submit();
});
