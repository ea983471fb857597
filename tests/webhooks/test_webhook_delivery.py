"""One delivery attempt against real receivers on 127.0.0.1 (http.server in a thread)."""
import contextlib
import datetime
import http.server
import socket
import ssl
import threading
import time

import pytest

from webhooks import delivery
from webhooks.delivery import deliver
from webhooks.signing import headers as sign_headers, new_secret
from webhooks.ssrf import VettedTarget, vet_url

BODY = b'{"type":"job.completed","data":{"job_id":"j1"}}'


class Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host="127.0.0.1"):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, 0), Handler)
        self.requests = []            # (path, headers, body)
        self.release = threading.Event()

    @property
    def port(self) -> int:
        return self.server_address[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append((self.path, dict(self.headers), body))
        path = self.path.split("?")[0]
        try:
            if path.startswith("/status/"):
                self.reply(int(path.rsplit("/", 1)[1]))
            elif path == "/redirect":
                self.reply(302, location=f"http://127.0.0.1:{self.server.port}/target")
            elif path == "/slow":
                self.server.release.wait(5)
                self.reply(200)
            elif path == "/drip":
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for i in range(50):
                    if self.server.release.wait(0.1):
                        return
                    self.wfile.write(f"X-Drip-{i}: 1\r\n".encode())
                    self.wfile.flush()
            elif path == "/big":
                self.send_response(200)
                self.send_header("Content-Length", str(4 << 20))
                self.end_headers()
                self.wfile.write(b"x" * (4 << 20))
            else:
                self.reply(200)
        except OSError:
            pass                       # the client hung up, as it should

    def reply(self, status, location=None):
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@contextlib.contextmanager
def serving(server: Receiver):
    """Runs `server` in a thread until the block ends."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver():
    with serving(Receiver()) as server:
        yield server


def loopback(server, path: str) -> VettedTarget:
    """Through the real guard, with the explicit opt-in that tests use."""
    return vet_url(f"http://127.0.0.1:{server.port}{path}", allow_private=True)


def signed(msg_id="msg_1"):
    return sign_headers([new_secret()], msg_id, None, BODY)


def test_2xx_is_delivered_with_the_signed_body(receiver):
    sent = signed()
    result = deliver(loopback(receiver, "/status/200?tenant=7"), BODY, sent)
    assert (result.status_code, result.error, result.delivered, result.gone) == (200, None, True, False)
    assert result.duration_ms >= 0
    [(path, got, body)] = receiver.requests
    assert path == "/status/200?tenant=7"
    assert body == BODY
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert got[name] == sent[name]
    assert got["Content-Type"] == "application/json"
    assert got["User-Agent"].startswith("csm-batch-webhooks/")
    assert got["Host"] == f"127.0.0.1:{receiver.port}"


@pytest.mark.parametrize("status", [201, 202, 204])
def test_any_2xx_counts(receiver, status):
    assert deliver(loopback(receiver, f"/status/{status}"), BODY, signed()).delivered


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 502, 503])
def test_other_statuses_are_failed_attempts_with_the_status_recorded(receiver, status):
    result = deliver(loopback(receiver, f"/status/{status}"), BODY, signed())
    assert (result.status_code, result.error, result.delivered, result.gone) == (status, f"HTTP {status}", False, False)


def test_410_means_gone(receiver):
    result = deliver(loopback(receiver, "/status/410"), BODY, signed())
    assert (result.status_code, result.delivered, result.gone) == (410, False, True)
    assert result.error == "HTTP 410: endpoint gone"


def test_redirects_are_not_followed(receiver):
    result = deliver(loopback(receiver, "/redirect"), BODY, signed())
    assert (result.status_code, result.delivered, result.gone) == (302, False, False)
    assert result.error == "HTTP 302: redirects are not followed"
    time.sleep(0.1)
    assert [path for path, _, _ in receiver.requests] == ["/redirect"]


@pytest.mark.parametrize("status", [301, 303, 307, 308])
def test_every_3xx_is_a_failed_attempt(receiver, status):
    result = deliver(loopback(receiver, f"/status/{status}"), BODY, signed())
    assert (result.status_code, result.delivered) == (status, False)


def test_a_receiver_slower_than_the_timeout_is_an_error_with_its_duration(receiver):
    result = deliver(loopback(receiver, "/slow"), BODY, signed(), timeout_s=0.3)
    assert (result.status_code, result.delivered, result.gone) == (None, False, False)
    assert result.error == "timed out after 0.3 s"
    assert 250 <= result.duration_ms < 2000


def test_a_socket_timeout_that_wakes_before_the_deadline_reads_the_same(receiver, monkeypatch):
    # On a busy machine the socket's own timeout (each call may take the whole timeout) can end
    # the attempt before the deadline's timer thread runs: here the timer never does.
    monkeypatch.setattr(delivery._Deadline, "start", lambda self: None)
    result = deliver(loopback(receiver, "/slow"), BODY, signed(), timeout_s=0.3)
    assert (result.status_code, result.error) == (None, "timed out after 0.3 s")


def test_the_timeout_bounds_the_whole_attempt_not_each_read(receiver):
    # Headers arrive every 0.1 s, each read well inside the timeout, for 5 s in all.
    result = deliver(loopback(receiver, "/drip"), BODY, signed(), timeout_s=0.5)
    assert (result.status_code, result.delivered, result.error) == (None, False, "timed out after 0.5 s")
    assert 450 <= result.duration_ms < 1500


def test_only_a_little_of_a_large_response_is_read(receiver):
    result = deliver(loopback(receiver, "/big"), BODY, signed(), timeout_s=2)
    assert (result.status_code, result.delivered) == (200, True)
    assert result.duration_ms < 1000


def test_connection_refused_is_an_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]          # nothing listens once it is closed
    result = deliver(vet_url(f"http://127.0.0.1:{port}/", allow_private=True), BODY, signed(), timeout_s=2)
    assert (result.status_code, result.error, result.delivered, result.gone) == (None, "connection refused", False, False)
    assert 0 <= result.duration_ms < 2000


def test_ipv6_loopback(dns_watch):
    try:
        server = Receiver("::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with serving(server):
        target = vet_url(f"http://[::1]:{server.port}/status/200", allow_private=True)
        assert target.ip == "::1"
        assert deliver(target, BODY, signed()).delivered
        assert server.requests[0][1]["Host"] == f"[::1]:{server.port}"


def test_a_target_ip_must_be_an_address(receiver):
    target = VettedTarget(scheme="http", host="localhost", port=receiver.port, path="/", ip="localhost",
                          addresses=("localhost",))
    with pytest.raises(ValueError):
        deliver(target, BODY, signed())
    assert receiver.requests == []


@pytest.fixture
def dns_watch(monkeypatch):
    """Fails any name or address lookup made while delivering (the vetted IP is used as is)."""
    looked_up = []

    def watched(host, *args, **kwargs):
        looked_up.append(host)
        raise AssertionError(f"delivery looked up {host!r}")

    monkeypatch.setattr(socket, "getaddrinfo", watched)
    return looked_up


def test_the_vetted_address_is_used_and_the_host_is_never_resolved_again(receiver, dns_watch):
    def fake_dns(host, port, family=0, type=0, proto=0, flags=0):
        assert host == "hooks.example.test"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]

    target = vet_url(f"http://hooks.example.test:{receiver.port}/status/200", allow_private=True, resolve=fake_dns)
    assert target.ip == "127.0.0.1"
    result = deliver(target, BODY, {**signed(), "Host": "evil.example.test"})
    assert result.delivered
    [(_, got, _)] = receiver.requests
    assert got["Host"] == f"hooks.example.test:{receiver.port}"   # the caller cannot override it
    assert dns_watch == []


def test_a_hand_built_target_connects_to_its_ip(receiver, dns_watch):
    target = VettedTarget(scheme="http", host="hooks.example.test", port=receiver.port, path="/status/204",
                          ip="127.0.0.1", addresses=("127.0.0.1",))
    assert deliver(target, BODY, signed()).status_code == 204
    assert receiver.requests[0][1]["Host"] == f"hooks.example.test:{receiver.port}"
    assert dns_watch == []


def test_proxy_settings_in_the_environment_are_ignored(receiver, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    assert deliver(loopback(receiver, "/status/200"), BODY, signed()).delivered


def test_header_injection_is_refused_before_connecting(receiver):
    with pytest.raises(ValueError):
        deliver(loopback(receiver, "/status/200"), BODY, {"webhook-id": "msg_1\r\nX-Evil: 1"})
    assert receiver.requests == []


# --- HTTPS: SNI and certificate checks use the original host name ---------------------------------

@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A private CA and a certificate for hooks.example.test, in PEM files."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("test CA")).issuer_name(name("test CA"))
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(name("hooks.example.test")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example.test")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "cert.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder


@pytest.fixture
def tls_receiver(tls_files):
    server = Receiver()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files / "cert.pem", tls_files / "key.pem")
    server.sni = []
    context.sni_callback = lambda sock, name, ctx: server.sni.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving(server):
        yield server


def pinned_https(server, host="hooks.example.test") -> VettedTarget:
    return VettedTarget(scheme="https", host=host, port=server.port, path="/status/200", ip="127.0.0.1",
                        addresses=("127.0.0.1",))


def test_https_sends_sni_and_verifies_against_the_original_host(tls_receiver, tls_files, dns_watch):
    trust = ssl.create_default_context(cafile=str(tls_files / "ca.pem"))
    result = deliver(pinned_https(tls_receiver), BODY, signed(), tls_context=trust)
    assert (result.status_code, result.error, result.delivered) == (200, None, True)
    assert tls_receiver.sni == ["hooks.example.test"]
    assert tls_receiver.requests[0][1]["Host"] == f"hooks.example.test:{tls_receiver.port}"
    assert tls_receiver.requests[0][2] == BODY
    assert dns_watch == []


def test_https_refuses_a_certificate_for_another_host(tls_receiver, tls_files):
    trust = ssl.create_default_context(cafile=str(tls_files / "ca.pem"))
    result = deliver(pinned_https(tls_receiver, "other.example.test"), BODY, signed(), tls_context=trust)
    assert (result.status_code, result.delivered) == (None, False)
    assert result.error.startswith("TLS certificate verification failed")
    assert tls_receiver.requests == []


def test_https_verifies_against_the_system_trust_store_by_default(tls_receiver):
    result = deliver(pinned_https(tls_receiver), BODY, signed(), timeout_s=2)
    assert (result.status_code, result.delivered) == (None, False)
    assert result.error.startswith("TLS certificate verification failed")
    assert tls_receiver.requests == []
