"""Credentials inside endpoint URLs, and API keys, are never written anywhere.

`https://user:pass@host/v1` and `…/v1?api_key=…` work as endpoints, but run configs, databases, reports,
logs, lock files and error messages only ever see them masked: `https://***@host/v1`, `…/v1?api_key=***`.
An API key (and every URL credential) the run uses is remembered once (`remember_secrets`) and masked in
every error text that is stored or printed (`scrub_secrets`, applied where a run's results are written),
and so is any `Bearer …` token an endpoint echoes back.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

MASK = "***"
MIN_SECRET = 4  # shorter values are left alone: masking every "a" would garble the text and protect nothing
_BEARER = re.compile(r"(?i)\b(bearer)(\s+|%20|\+)[A-Za-z0-9._~+/=-]+")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
_remembered: set[str] = set()  # this process's secrets (forked workers inherit them)
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
        if len(secret) >= MIN_SECRET:
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


# The key sent to local servers that want none (vLLM, transformers serve; the client insists on one): no secret.
NO_KEY = "not-needed"


def remember_secrets(api_key: str | None, *urls: str) -> None:
    """The secrets this process uses: an API key's value and the credentials inside endpoint URLs."""
    found = {api_key} if api_key and api_key != NO_KEY else set()
    for url in urls:
        found |= _secrets(url)
        login = url_login(url)
        if login:  # as it travels in the Authorization header (drp.teacher.endpoints), should it be echoed
            found.add(base64.b64encode(login.encode()).decode())
    _remembered.update(secret for secret in found if len(secret) >= MIN_SECRET)


def scrub_secrets(text):
    """Error text as it may be stored or printed: every remembered secret, `Bearer …` tokens and URL credentials
    masked. Anything that is not text is returned as it is."""
    if not isinstance(text, str) or not text:
        return text
    for secret in sorted(_remembered, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    text = _BEARER.sub(lambda found: f"{found.group(1)} {MASK}", text)
    if "@" in text or "?" in text:
        text = redact_command(text)
    return text


def url_login(url: str) -> str | None:
    """`user:password` from a URL's user info, decoded; None without one."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return None
    if "@" not in netloc:
        return None
    return ":".join(unquote(part) for part in netloc.rpartition("@")[0].split(":", 1))


def redact_command(text: str) -> str:
    """A command line (or any text) with every URL in it shown as `redact_url` shows it."""
    return _URL.sub(lambda found: redact_url(found.group(0)), text)
