"""SSRF guard for customer-supplied webhook URLs (OWASP SSRF prevention, "allow-list" style).

``vet_url`` parses a URL strictly, resolves every A/AAAA record of its host and returns a
``VettedTarget`` naming the address to connect to; delivery connects to that address (never
re-resolving), so DNS cannot change between the check and the connection. Call it at submission
(turn ``UnsafeUrl`` into a 4xx) and again before every delivery attempt.

Rules:
- scheme http or https; a host; no ``user:pass@``; port 1..65535; printable ASCII only (no
  spaces, control characters or backslashes; international names as punycode ``xn--``).
- A numeric host must be a strict dotted quad (``8.8.8.8``); integer, octal, hex and shortened
  forms (``2130706433``, ``0x7f.1``, ``017700000001``, ``127.1``) are refused outright, since
  resolvers and URL parsers disagree on them. IPv6 literals go in brackets; zone ids are refused.
- Every resolved address must be public, not just the first: one private answer refuses the URL.
- "Public": IPv6 forms that embed an IPv4 address are judged by that IPv4 address (IPv4-mapped
  ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``) or by both addresses (6to4 ``2002::/16``, Teredo,
  IPv4-compatible ``::a.b.c.d``, IPv4-translated ``::ffff:0:a.b.c.d``); then ``is_global`` must
  hold and the address must be outside explicit block lists (multicast, which ``is_global`` calls
  global; CGNAT 100.64/10; 0/8; benchmarking 198.18/15; 192.0.0/24; the 6to4 relay 192.88.99/24;
  240/4; site-local fec0::/10; the IETF protocol block 2001::/23; documentation ranges; local-use
  NAT64 64:ff9b:1::/48, whose embedding depends on the operator's prefix length). The explicit
  lists keep the answer the same across Python versions, whose ``is_global`` tables differ.

``allow_private=True`` is the explicit opt-in for tests and single-host installs (off by
default): it admits loopback, private, CGNAT and reserved addresses, but still refuses
link-local (169.254/16, fe80::/10), multicast, broadcast and unspecified addresses, the known
cloud metadata and host services outside link-local (``_METADATA``), the local-use NAT64 prefix
(which IPv4 address it hides depends on the operator), and every URL-shape rule above. IPv4
hidden in IPv6 is checked against the same always-refused lists.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_CHARS = 2048
_SCHEME_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_STRICT_QUAD = re.compile(r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")

_net = ipaddress.ip_network
_V4_BLOCKED = tuple(_net(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
))
_V6_BLOCKED = tuple(_net(n) for n in (
    "::/8", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16", "64:ff9b:1::/48",
    "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
))
# Cloud metadata and host services outside link-local, refused even with allow_private:
# Alibaba's metadata (100.100.100.200, in CGNAT), Oracle Cloud's (192.0.0.192), Azure's
# WireServer (168.63.129.16, a public address); AWS's IPv6 instance metadata and EKS pod identity
# (fd00:ec2::254, fd00:ec2::23) and Google Cloud's IPv6 metadata (fd20:ce::254), in ULA space.
# The IPv4 link-local ones (169.254.169.254, AWS ECS 169.254.170.2, ...) are in 169.254/16.
_V4_METADATA = ("100.100.100.200/32", "192.0.0.192/32", "168.63.129.16/32")
_V6_METADATA = ("fd00:ec2::254/128", "fd00:ec2::23/128", "fd20:ce::254/128")
# Refused even with allow_private: never a unicast destination, cloud metadata, or local-use
# NAT64 (64:ff9b:1::/48 can hide any IPv4 address, metadata included, at the operator's choice).
_V4_ALWAYS_BLOCKED = tuple(_net(n) for n in (
    "0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32", *_V4_METADATA))
_V6_ALWAYS_BLOCKED = tuple(_net(n) for n in (
    "::/128", "fe80::/10", "ff00::/8", "64:ff9b:1::/48", *_V6_METADATA))

_NAT64 = _net("64:ff9b::/96")
_IPV4_COMPATIBLE = _net("::/96")
_IPV4_TRANSLATED = _net("::ffff:0:0:0/96")


class UnsafeUrl(ValueError):
    """A webhook URL that may not be called. ``str(error)`` is safe to show the customer (it
    never names the addresses a hostname resolved to); ``reason`` is a short code: ``url``,
    ``scheme``, ``userinfo``, ``host``, ``port``, ``dns`` (resolution failed, may be transient)
    or ``address`` (a non-public address)."""

    def __init__(self, message: str, reason: str = "url"):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class VettedTarget:
    """A URL that passed ``vet_url``. ``host`` is the name for the Host header and TLS (lowercase
    ASCII, no brackets); ``ip`` is the vetted address to connect to; ``addresses`` are all the
    vetted addresses the host resolved to; ``path`` includes the query string."""

    scheme: str
    host: str
    port: int
    path: str
    ip: str
    addresses: tuple[str, ...]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == _SCHEME_PORTS[self.scheme] else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"


Resolver = Callable[..., list]


def vet_url(url: str, *, allow_private: bool = False, resolve: Resolver = socket.getaddrinfo) -> VettedTarget:
    """Checks ``url`` against the rules in the module docstring and returns where to connect.

    ``resolve`` is called like ``socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)`` and is
    not called at all for IP literals. Raises ``UnsafeUrl`` with a message for the customer."""
    if not isinstance(url, str) or not url:
        raise UnsafeUrl("webhook URL is required")
    if len(url) > MAX_URL_CHARS:
        raise UnsafeUrl(f"webhook URL must be at most {MAX_URL_CHARS} characters")
    if not all("!" <= ch <= "~" for ch in url) or "\\" in url:
        raise UnsafeUrl("webhook URL must be printable ASCII without spaces or backslashes "
                        "(write international domain names as punycode)")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UnsafeUrl("webhook URL is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEME_PORTS:
        raise UnsafeUrl("webhook URL must start with http:// or https://", "scheme")
    if "@" in parts.netloc:
        raise UnsafeUrl("webhook URL must not contain a user name or password", "userinfo")
    try:
        port = parts.port
    except ValueError:
        raise UnsafeUrl("webhook URL has an invalid port", "port") from None
    if port is None:
        port = _SCHEME_PORTS[scheme]
    elif not 1 <= port <= 65535:
        raise UnsafeUrl("webhook URL port must be between 1 and 65535", "port")

    host, literal = _parse_host(parts.netloc)
    if literal is not None:
        addresses = [literal]
    else:
        addresses = _resolve(host, port, resolve)

    connect_to = []
    for address in addresses:
        if not _allowed(address, allow_private):
            if literal is not None:
                raise UnsafeUrl("webhook URL must point to a public IP address", "address")
            raise UnsafeUrl(f"webhook host {host} resolves to a non-public address", "address")
        connect_to.append(str(_connect_form(address)))
    connect_to = list(dict.fromkeys(connect_to))

    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return VettedTarget(scheme=scheme, host=host, port=port, path=path, ip=connect_to[0],
                        addresses=tuple(connect_to))


def is_public(address: IPAddress) -> bool:
    """True if ``address`` (and any IPv4 address embedded in it) is publicly routable unicast."""
    return _allowed(address, allow_private=False)


# --- host parsing -----------------------------------------------------------------------------

def _parse_host(netloc: str) -> tuple[str, IPAddress | None]:
    """(host, IP literal or None) from a netloc already known to have no userinfo."""
    if netloc.startswith("["):
        inside, sep, rest = netloc[1:].partition("]")
        if "%" in inside:
            raise UnsafeUrl("webhook URL must not contain an IPv6 zone id", "host")
        if not sep or (rest and not rest.startswith(":")):
            raise UnsafeUrl("webhook URL has an invalid IPv6 address", "host")
        try:
            address = ipaddress.IPv6Address(inside)
        except ValueError:
            raise UnsafeUrl("webhook URL has an invalid IPv6 address", "host") from None
        return str(address), address
    host = netloc.rsplit(":", 1)[0] if ":" in netloc else netloc
    host = host.lower()
    if not host:
        raise UnsafeUrl("webhook URL must include a host name", "host")
    if host.endswith("."):
        raise UnsafeUrl("webhook host must not end with a dot", "host")
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        # Ends in a number (WHATWG's test), so parsers treat it as IPv4: only a strict quad.
        if not _STRICT_QUAD.match(host):
            raise UnsafeUrl("webhook URL has a numeric host that is not a dotted-quad IPv4 address "
                            "(like 203.0.113.7)", "host")
        return host, ipaddress.IPv4Address(host)
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise UnsafeUrl("webhook URL has an invalid host name", "host")
    return host, None


def _resolve(host: str, port: int, resolve: Resolver) -> list[IPAddress]:
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeUrl(f"webhook host {host} could not be resolved", "dns") from None
    addresses = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            raise UnsafeUrl(f"webhook host {host} resolves to a non-IP address", "address")
        try:
            addresses.append(ipaddress.ip_address(sockaddr[0]))
        except ValueError:
            raise UnsafeUrl(f"webhook host {host} resolves to an invalid address", "address") from None
    if not addresses:
        raise UnsafeUrl(f"webhook host {host} has no IPv4 or IPv6 address", "dns")
    return addresses


# --- address classification -------------------------------------------------------------------

def _embedded(address: ipaddress.IPv6Address) -> tuple[bool, list[ipaddress.IPv4Address]]:
    """(judge by the embedded IPv4 addresses only?, the IPv4 addresses hidden in ``address``)."""
    if address.ipv4_mapped is not None:
        return True, [address.ipv4_mapped]
    if address in _NAT64:
        return True, [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.sixtofour is not None:
        return False, [address.sixtofour]
    if address.teredo is not None:
        return False, list(address.teredo)
    if (address in _IPV4_COMPATIBLE and int(address) > 1) or address in _IPV4_TRANSLATED:
        return False, [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return False, []


def _allowed(address: IPAddress, allow_private: bool) -> bool:
    if getattr(address, "scope_id", None):
        return False                                  # zoned addresses are link-scoped
    if isinstance(address, ipaddress.IPv6Address):
        only_embedded, inner = _embedded(address)
        if not all(_allowed(v4, allow_private) for v4 in inner):
            return False
        if only_embedded:
            return True
        if any(address in net for net in _V6_ALWAYS_BLOCKED):
            return False
        if allow_private:
            return True
        return address.is_global and not (
            address.is_multicast or address.is_reserved or address.is_link_local
            or address.is_site_local or address.is_unspecified or address.is_loopback
            or any(address in net for net in _V6_BLOCKED))
    if any(address in net for net in _V4_ALWAYS_BLOCKED):
        return False
    if allow_private:
        return True
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_link_local
        or address.is_unspecified or address.is_loopback
        or any(address in net for net in _V4_BLOCKED))


def _connect_form(address: IPAddress) -> IPAddress:
    """IPv4-mapped addresses are connected to as plain IPv4; everything else as is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
