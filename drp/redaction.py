"""Credentials inside endpoint URLs are never written anywhere.

`https://user:pass@host/v1` and `…/v1?api_key=…` work as endpoints, but run configs, databases, reports,
logs and error messages only ever see them masked: `https://***@host/v1`, `…/v1?api_key=***`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

MASK = "***"
# Query parameters known to hold no secret (Azure OpenAI's API version); every other value is masked.
PUBLIC_QUERY_KEYS = frozenset({"api-version", "api_version"})


def redact_url(url: str | None) -> str | None:
    """The URL with its user info and query values masked (unchanged when it holds neither)."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL we can take apart: show none of it
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(f"{quote(k)}={v if k.lower() in PUBLIC_QUERY_KEYS else MASK}" for k, v in pairs) or MASK
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def is_redacted(url: str | None) -> bool:
    """Whether this URL lost credentials to redaction (a stored one cannot be used to reconnect)."""
    return bool(url) and MASK in url


def scrub(text: str, url: str | None) -> str:
    """Free text (an error message, a log line) with the URL's credentials masked wherever they appear."""
    if not text or not url:
        return text
    text = text.replace(url, redact_url(url))
    for secret in sorted(_secrets(url), key=len, reverse=True):
        # Very short values are left alone: masking every "a" would garble the message and protect nothing.
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text


def _secrets(url: str) -> set[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return {url}
    found = set()
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        found.update({userinfo, *userinfo.split(":", 1)})
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() not in PUBLIC_QUERY_KEYS:
            found.add(value)
    for raw in parts.query.split("&"):  # as written (percent-encoded), too
        key, _, value = raw.partition("=")
        if key.lower() not in PUBLIC_QUERY_KEYS:
            found.add(value)
    if parts.fragment:
        found.add(parts.fragment)
    return {s for s in found if s}
