"""The SSRF guard. No real DNS: every test injects the resolver, and IP literals must not call it."""
import socket

import pytest

from webhooks.ssrf import UnsafeUrl, VettedTarget, vet_url


def resolver(*addresses: str, calls: list | None = None):
    """A getaddrinfo stand-in answering every name with ``addresses``."""

    def resolve(host, port, family=0, type=0, proto=0, flags=0):
        if calls is not None:
            calls.append((host, port, type))
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
             (a, port, 0, 0) if ":" in a else (a, port))
            for a in addresses
        ]

    return resolve


def no_dns(*args, **kwargs):
    raise AssertionError(f"unexpected DNS lookup {args}")


def failing_dns(*args, **kwargs):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


PUBLIC_V4, PUBLIC_V6 = "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"

REFUSED = [
    # (url, resolver answer or None for "must not resolve", reason)
    ("http://127.0.0.1/", None, "address"),
    ("http://127.0.0.1:8080/hook", None, "address"),
    ("http://localhost/", ["127.0.0.1"], "address"),
    ("http://hooks.example.test/", ["::1"], "address"),
    ("http://10.1.2.3/", None, "address"),
    ("http://172.16.5.4/", None, "address"),
    ("http://172.31.255.255/", None, "address"),
    ("http://192.168.1.1/", None, "address"),
    ("http://169.254.169.254/latest/meta-data/", None, "address"),
    ("http://metadata.example.test/", ["169.254.169.254"], "address"),
    ("http://100.64.0.1/", None, "address"),
    ("http://100.127.255.254/", None, "address"),
    ("http://0.0.0.0/", None, "address"),
    ("http://0.1.2.3/", None, "address"),
    ("http://198.18.0.1/", None, "address"),
    ("http://192.0.0.9/", None, "address"),
    ("http://192.0.2.1/", None, "address"),
    ("http://192.88.99.1/", None, "address"),
    ("http://240.0.0.1/", None, "address"),
    ("http://255.255.255.255/", None, "address"),
    ("http://224.0.0.1/", None, "address"),
    ("http://239.255.255.250/", None, "address"),
    ("http://[::1]/", None, "address"),
    ("http://[::]/", None, "address"),
    ("http://[fe80::1]/", None, "address"),
    ("http://[fec0::1]/", None, "address"),
    ("http://[fd00::1]/", None, "address"),
    ("http://[ff02::1]/", None, "address"),
    ("http://[ff0e::1]/", None, "address"),           # global-scope multicast: is_global says True
    ("http://[2001:db8::1]/", None, "address"),
    ("http://[3fff::1]/", None, "address"),
    ("http://[::ffff:127.0.0.1]/", None, "address"),  # IPv4-mapped
    ("http://[::ffff:7f00:1]/", None, "address"),
    ("http://[::ffff:a9fe:a9fe]/", None, "address"),  # mapped 169.254.169.254
    ("http://[::7f00:1]/", None, "address"),          # IPv4-compatible
    ("http://[::8.8.8.8]/", None, "address"),         # deprecated IPv4-compatible, even if public
    ("http://[::ffff:0:7f00:1]/", None, "address"),   # IPv4-translated
    ("http://[64:ff9b::a00:1]/", None, "address"),    # NAT64 of 10.0.0.1
    ("http://[64:ff9b::7f00:1]/", None, "address"),
    ("http://[64:ff9b:1::808:808]/", None, "address"),  # local-use NAT64
    ("http://[2002:7f00:1::]/", None, "address"),     # 6to4 of 127.0.0.1
    ("http://[2002:a00:1::1]/", None, "address"),
    ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", None, "address"),  # Teredo
    ("http://mixed.example.test/", [PUBLIC_V4, "10.0.0.1"], "address"),
    ("http://mixed.example.test/", [PUBLIC_V6, "fd00::1"], "address"),
    ("http://mixed.example.test/", [PUBLIC_V4, PUBLIC_V6, "::ffff:192.168.0.1"], "address"),
    ("http://linklocal.example.test/", ["fe80::1%1"], "address"),
    # numeric hosts that are not a strict dotted quad
    ("http://2130706433/", None, "host"),
    ("http://0x7f.1/", None, "host"),
    ("http://0x7f000001/", None, "host"),
    ("http://017700000001/", None, "host"),
    ("http://127.1/", None, "host"),
    ("http://127.0.0.01/", None, "host"),
    ("http://0177.0.0.1/", None, "host"),
    ("http://1.2.3.4.5/", None, "host"),
    ("http://8.8.8.8./", None, "host"),
    ("http://foo.0x10/", None, "host"),
    # URL shape
    ("ftp://example.com/", None, "scheme"),
    ("file:///etc/passwd", None, "scheme"),
    ("gopher://example.com:70/", None, "scheme"),
    ("javascript:alert(1)", None, "scheme"),
    ("//example.com/hook", None, "scheme"),
    ("example.com/hook", None, "scheme"),
    ("http://user:pass@example.com/", None, "userinfo"),
    ("http://user@example.com/", None, "userinfo"),
    ("http://example.com@127.0.0.1/", None, "userinfo"),
    ("http:///hook", None, "host"),
    ("http://:80/hook", None, "host"),
    ("http://example.com:0/", None, "port"),
    ("http://example.com:65536/", None, "port"),
    ("http://example.com:http/", None, "port"),
    ("http://[fe80::1%25eth0]/", None, "host"),
    ("http://[::1]x/", None, "host"),
    ("http://[not-an-ip]/", None, ("host", "url")),  # 3.11.4+ urlsplit checks brackets
    ("http://exa_mple-.com/", None, "host"),
    ("http://hooks.example.test./", None, "host"),
    ("http://exa mple.com/", None, "url"),
    ("http://example.com/\r\nX-Injected: 1", None, "url"),
    ("http://example.com\\@127.0.0.1/", None, "url"),
    ("http://例え.jp/", None, "url"),
    ("", None, "url"),
    ("http://" + "a" * 2050 + ".com/", None, "url"),
]


@pytest.mark.parametrize("url, answer, reason", REFUSED)
def test_refused(url, answer, reason):
    resolve = no_dns if answer is None else resolver(*answer)
    with pytest.raises(UnsafeUrl) as caught:
        vet_url(url, resolve=resolve)
    assert caught.value.reason in ((reason,) if isinstance(reason, str) else reason)
    assert str(caught.value).startswith("webhook ")


def test_messages_do_not_reveal_what_a_name_resolved_to():
    with pytest.raises(UnsafeUrl) as caught:
        vet_url("https://internal.example.test/", resolve=resolver(PUBLIC_V4, "10.20.30.40"))
    assert str(caught.value) == "webhook host internal.example.test resolves to a non-public address"
    assert "10.20.30.40" not in str(caught.value)


@pytest.mark.parametrize("resolve, message", [
    (failing_dns, "webhook host nowhere.example.test could not be resolved"),
    (resolver(), "webhook host nowhere.example.test has no IPv4 or IPv6 address"),
])
def test_unresolvable_hosts_are_refused_as_dns(resolve, message):
    with pytest.raises(UnsafeUrl) as caught:
        vet_url("https://nowhere.example.test/hook", resolve=resolve)
    assert caught.value.reason == "dns"
    assert str(caught.value) == message


def test_a_public_ip_literal_is_accepted_without_dns():
    assert vet_url("http://8.8.8.8/hook", resolve=no_dns) == VettedTarget(
        scheme="http", host="8.8.8.8", port=80, path="/hook", ip="8.8.8.8", addresses=("8.8.8.8",))
    target = vet_url("https://[2606:4700:4700::1111]:8443/", resolve=no_dns)
    assert (target.host, target.ip, target.port, target.path) == ("2606:4700:4700::1111", "2606:4700:4700::1111", 8443, "/")
    assert target.url == "https://[2606:4700:4700::1111]:8443/"


def test_a_hostname_with_only_public_addresses_is_accepted():
    calls = []
    target = vet_url("HTTPS://Hooks.Example.TEST:8443/in?token=abc#frag",
                     resolve=resolver(PUBLIC_V4, PUBLIC_V6, PUBLIC_V4, calls=calls))
    assert calls == [("hooks.example.test", 8443, socket.SOCK_STREAM)]
    assert target == VettedTarget(scheme="https", host="hooks.example.test", port=8443, path="/in?token=abc",
                                  ip=PUBLIC_V4, addresses=(PUBLIC_V4, PUBLIC_V6))
    assert target.url == "https://hooks.example.test:8443/in?token=abc"


def test_default_ports_and_paths():
    assert vet_url("http://hooks.example.test", resolve=resolver(PUBLIC_V4)).port == 80
    assert vet_url("https://hooks.example.test", resolve=resolver(PUBLIC_V4)).path == "/"
    assert vet_url("https://hooks.example.test", resolve=resolver(PUBLIC_V4)).url == "https://hooks.example.test/"


@pytest.mark.parametrize("url, ip", [
    ("http://[::ffff:8.8.8.8]/", "8.8.8.8"),           # mapped public IPv4: connect over IPv4
    ("http://[64:ff9b::808:808]/", "64:ff9b::808:808"),  # DNS64/NAT64 of a public IPv4 (IPv6-only hosts)
    ("http://[2002:808:808::1]/", "2002:808:808::1"),    # 6to4 of a public IPv4
])
def test_embedded_public_ipv4_is_judged_by_that_address(url, ip):
    assert vet_url(url, resolve=no_dns).ip == ip


@pytest.mark.parametrize("url, answer", [
    ("http://127.0.0.1:8080/hook", None),
    ("http://[::1]:8080/hook", None),
    ("http://10.0.0.5/", None),
    ("http://[fd00::5]/", None),
    ("http://100.64.0.1/", None),
    ("http://localhost:8080/", ["127.0.0.1", "::1"]),
    ("http://receiver/", ["172.18.0.3"]),
    ("http://[::ffff:127.0.0.1]/", None),
])
def test_the_opt_in_admits_loopback_and_private_addresses(url, answer):
    with pytest.raises(UnsafeUrl):
        vet_url(url, resolve=no_dns if answer is None else resolver(*answer))
    target = vet_url(url, allow_private=True, resolve=no_dns if answer is None else resolver(*answer))
    assert target.ip in (answer or [target.host, "127.0.0.1"])


@pytest.mark.parametrize("url, answer", [
    ("http://169.254.169.254/latest/meta-data/", None),
    ("http://metadata.example.test/", ["127.0.0.1", "169.254.169.254"]),
    ("http://[fe80::1]/", None),
    ("http://[::ffff:169.254.169.254]/", None),
    ("http://0.0.0.0:8080/", None),
    ("http://[::]:8080/", None),
    ("http://224.0.0.1/", None),
    ("http://[ff02::1]/", None),
    ("http://255.255.255.255/", None),
    ("ftp://127.0.0.1/", None),
    ("http://user:pass@127.0.0.1/", None),
    ("http://0x7f.1/", None),
    ("http://2130706433/", None),
])
def test_the_opt_in_still_refuses_metadata_multicast_and_bad_urls(url, answer):
    with pytest.raises(UnsafeUrl):
        vet_url(url, allow_private=True, resolve=no_dns if answer is None else resolver(*answer))


def test_the_opt_in_is_off_by_default():
    with pytest.raises(UnsafeUrl):
        vet_url("http://127.0.0.1:8080/", resolve=no_dns)


@pytest.mark.parametrize("address, public", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("::ffff:8.8.8.8", True), ("64:ff9b::808:808", True),
    ("127.0.0.1", False), ("100.64.0.1", False), ("224.0.0.1", False), ("ff0e::1", False),
    ("::ffff:10.0.0.1", False), ("2002:c0a8:101::1", False), ("fec0::1", False),
])
def test_is_public(address, public):
    import ipaddress

    from webhooks.ssrf import is_public

    assert is_public(ipaddress.ip_address(address)) is public


def _ipv6_forms(v4: str) -> list[str]:
    """Every IPv6 spelling that hides ``v4``: mapped, NAT64, 6to4, IPv4-compatible, translated,
    Teredo (client obfuscated), and local-use NAT64 at the RFC 6052 /48 and /96 embeddings."""
    import ipaddress

    n = int(ipaddress.IPv4Address(v4))
    hi, lo = n >> 16, n & 0xFFFF
    teredo_client = n ^ 0xFFFFFFFF
    return [
        f"::ffff:{v4}", f"64:ff9b::{v4}", f"2002:{hi:x}:{lo:x}::1", f"::{v4}", f"::ffff:0:{v4}",
        f"2001:0:4136:e378:8000:63bf:{teredo_client >> 16:x}:{teredo_client & 0xFFFF:x}",
        f"64:ff9b:1:{hi:x}:{lo >> 8:x}:{(lo & 0xFF) << 8:x}::", f"64:ff9b:1::{v4}",
    ]


CLOUD_METADATA_V4 = ["169.254.169.254", "169.254.170.2", "100.100.100.200", "192.0.0.192", "168.63.129.16"]
CLOUD_METADATA = CLOUD_METADATA_V4 + ["fd00:ec2::254", "fd00:ec2::23", "fd20:ce::254"] + [
    form for v4 in CLOUD_METADATA_V4 for form in _ipv6_forms(v4)
]


@pytest.mark.parametrize("address", CLOUD_METADATA)
@pytest.mark.parametrize("allow_private", [False, True])
def test_cloud_metadata_is_refused_in_every_form_even_with_the_opt_in(address, allow_private):
    literal = f"http://[{address}]/" if ":" in address else f"http://{address}/"
    for url, resolve in ((literal, no_dns), ("http://hook.example.test/", resolver("127.0.0.1", address))):
        with pytest.raises(UnsafeUrl) as refused:
            vet_url(url, allow_private=allow_private, resolve=resolve)
        assert refused.value.reason == "address"


def test_the_opt_in_still_admits_neighbours_of_metadata_addresses():
    for address in ("100.100.100.201", "fd00:ec2::1", "[fd20:ce::253]", "192.0.0.193"):
        host = address if address.startswith("[") or ":" not in address else f"[{address}]"
        assert vet_url(f"http://{host}/", allow_private=True, resolve=no_dns).port == 80
