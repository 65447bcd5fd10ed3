// Notification urls come from the server but are data: only http(s) and paths of this site are
// ever followed (no javascript:, data:, or "//other.site" that a browser reads as another host).

export function safeUrl(url, here = window.location) {
  if (typeof url !== "string") return null;
  const text = url.trim();
  if (!text || /[\u0000-\u001f\u007f\\]/.test(text)) return null;
  let parsed;
  try {
    parsed = new URL(text, here.href);
  } catch {
    return null;
  }
  if (text.startsWith("/")) {
    return !text.startsWith("//") && parsed.origin === here.origin ? parsed.href : null;
  }
  if (/^https?:\/\//i.test(text) && (parsed.protocol === "http:" || parsed.protocol === "https:")) {
    return parsed.href;
  }
  return null;
}
