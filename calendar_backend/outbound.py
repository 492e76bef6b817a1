"""The outbound-URL validator: the one check for every URL that came from outside and is sent to.

PURE: stdlib only (the bot reaches it through `calendar_backend.contract`). A Bot Framework
``serviceUrl`` (an activity's, a stored conversation reference's) names where the bot sends its
replies *with its app token*, so a URL is accepted only when there is exactly one reading of it:

- ``https`` only; ``http`` only for a loopback host in the explicit dev profile;
- printable ASCII only: no control characters, spaces, backslashes or non-ASCII (an IDN must
  arrive as punycode, ``xn--``), and none of those percent-encoded (``%5C``, ``%00``-``%1F``,
  ``%7F``) anywhere, since some clients decode them;
- an authority without userinfo (no ``@``, raw or ``%40``: no ``%`` in the authority at all);
- a host that is a strict DNS name (no empty label, so no trailing dot) or a dotted-quad IPv4 /
  bracketed IPv6 literal in canonical form (``127.1``, ``0x7f.1`` or ``2130706433`` are refused:
  resolvers read them as addresses), equal to or a dot-suffix of an allow-listed host
  (IP literals: equal only);
- the scheme's default port unless the port is allow-listed (dev profile: any port on an
  allow-listed loopback host).

What is checked is what the HTTP clients connect to: with all of the above excluded, urllib3
(requests/msrest) and yarl (aiohttp) split the URL at the same ``/``, ``?`` or ``#`` and find the
same host and port (``tests/security/test_outbound_url.py`` asserts this for every accepted URL).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"https": 443, "http": 80}
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PRINTABLE = re.compile(r"[\x21-\x7e]+")
_BAD_ESCAPE = re.compile(r"%(?:[01][0-9a-f]|7f|5c)", re.IGNORECASE)
_PORT = re.compile(r"[0-9]{1,5}")


class OutboundUrlError(ValueError):
    """The URL may not be sent to; ``reason`` is a short fixed code, safe to log (never the URL)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Where outbound requests may go. ``hosts``: allow-listed hosts (suffix match for names);
    ``ports``: non-default ports allowed on them; ``dev``: the explicit dev profile."""

    hosts: tuple[str, ...]
    ports: frozenset[int] = frozenset()
    dev: bool = False

    @staticmethod
    def from_csv(hosts: str, *, ports: str = "", dev: bool = False) -> OutboundPolicy:
        """From the comma-separated settings (``OPENSLOT_ALLOWED_SERVICE_URL_HOSTS``/``_PORTS``).

        Raises:
            ValueError: a port that is not an integer in 1..65535.
        """
        names = tuple(h.strip().lower().rstrip(".") for h in hosts.split(",") if h.strip())
        numbers = set()
        for raw in (p.strip() for p in ports.split(",") if p.strip()):
            if not _PORT.fullmatch(raw) or not 0 < int(raw) < 65536:
                raise ValueError("allowed ports must be integers in 1..65535")
            numbers.add(int(raw))
        return OutboundPolicy(names, frozenset(numbers), dev)


@dataclass(frozen=True, slots=True)
class OutboundTarget:
    """What a checked URL connects to."""

    scheme: str
    host: str  # lower-case name, canonical IPv4, or IPv6 without brackets
    port: int


def check_outbound_url(url: object, policy: OutboundPolicy) -> OutboundTarget:
    """The target ``url`` connects to, if ``policy`` allows it.

    Raises:
        OutboundUrlError: the URL is malformed, ambiguous or not allowed (see the module doc).
    """
    if not isinstance(url, str) or not url:
        raise OutboundUrlError("missing")
    if len(url) > MAX_URL_LENGTH:
        raise OutboundUrlError("too_long")
    if not _PRINTABLE.fullmatch(url) or "\\" in url:
        raise OutboundUrlError("characters")
    if _BAD_ESCAPE.search(url):
        raise OutboundUrlError("escapes")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS:
        raise OutboundUrlError("scheme")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority or "%" in authority:
        raise OutboundUrlError("userinfo")
    host, port = _split_authority(authority, _DEFAULT_PORTS[scheme])
    loopback = _is_loopback(host)
    if scheme == "http" and not (policy.dev and loopback):
        raise OutboundUrlError("scheme")
    if not _host_allowed(host, policy.hosts):
        raise OutboundUrlError("host")
    if port != _DEFAULT_PORTS[scheme] and port not in policy.ports and not (policy.dev and loopback):
        raise OutboundUrlError("port")
    return OutboundTarget(scheme, host, port)


def outbound_url_allowed(url: object, policy: OutboundPolicy) -> bool:
    """True when `check_outbound_url` accepts ``url``."""
    try:
        check_outbound_url(url, policy)
    except OutboundUrlError:
        return False
    return True


def _split_authority(authority: str, default_port: int) -> tuple[str, int]:
    if authority.startswith("["):
        literal, bracket, tail = authority[1:].partition("]")
        if not bracket:
            raise OutboundUrlError("host")
        try:
            address = ipaddress.IPv6Address(literal)
        except ValueError:
            raise OutboundUrlError("host") from None
        if str(address) != literal.lower():
            raise OutboundUrlError("host")  # one spelling only: the compressed canonical form
        if tail and not tail.startswith(":"):
            raise OutboundUrlError("host")
        host, port_text = str(address), (tail[1:] if tail else None)
    else:
        name, colon, port_raw = authority.partition(":")
        host, port_text = _host_name(name.lower()), (port_raw if colon else None)
    if port_text is None:
        return host, default_port
    if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        raise OutboundUrlError("port")
    return host, int(port_text)


def _host_name(name: str) -> str:
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise OutboundUrlError("host")  # empty label (trailing dot, ".."), "_", ":" in a name...
    if labels[-1].isdigit() or labels[-1].startswith("0x"):
        try:  # resolvers read a numeric last label as an address: only the dotted quad is one
            address = ipaddress.IPv4Address(name)
        except ValueError:
            raise OutboundUrlError("host") from None
        return str(address)
    return name


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in allowed:
        if address is not None:
            try:
                if ipaddress.ip_address(entry.strip("[]")) == address:
                    return True
            except ValueError:
                continue
        elif host == entry or host.endswith("." + entry):
            return True
    return False
