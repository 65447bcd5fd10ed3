"""The tests' push service (tests/push_service.py) on its own, before it judges the app.

Messages are made as an application server makes them: http-ece encrypts, py_vapid signs,
requests posts. The service must take those, and refuse each way of getting one thing wrong
with the status a push service answers and a reason that says what. RFC 8291's own example
pins the decryption to the RFC rather than to http-ece.
"""

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import http_ece
import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from py_vapid import Vapid02

from tests.push_service import (
    PushService,
    Refused,
    Subscription,
    b64url_decode,
    b64url_encode,
    check_vapid,
    decrypt,
    public_bytes,
)

# RFC 8291, Appendix A (the example of §5): the user agent's keys and the message it receives.
RFC8291_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC8291_UA_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
RFC8291_AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
RFC8291_MESSAGE = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLoc"
    "InmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLV"
    "WGNWQexSgSxsj_Qulcy4a-fN"
)
WATERMELON = b"When I grow up, I want to be a watermelon"

PAYLOAD = json.dumps({"title": "Hello", "body": "A push, decrypted"}).encode()


@pytest.fixture(scope="module")
def vapid() -> Vapid02:
    keys = Vapid02()
    keys.generate_keys()
    return keys


@pytest.fixture
def session():
    with requests.Session() as session:
        yield session


def vapid_key(keys: Vapid02) -> str:
    return b64url_encode(public_bytes(keys.public_key))


def encrypt(subscription: Subscription, payload: bytes, **options: Any) -> bytes:
    """As the sender does it: http-ece, a fresh ephemeral key per message."""
    return http_ece.encrypt(
        payload,
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=subscription.public_key,
        auth_secret=subscription.auth_secret,
        version="aes128gcm",
        **options,
    )


def headers_for(service: PushService, keys: Vapid02, **claims: Any) -> dict[str, str]:
    claims = {"aud": service.origin, "sub": "mailto:push@example.com", **claims}
    return {
        **keys.sign(claims),
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": "60",
    }


def post(
    session: requests.Session,
    subscription: Subscription,
    body: bytes,
    headers: dict[str, str],
) -> requests.Response:
    return session.post(subscription.endpoint, data=body, headers=headers, timeout=5)


def assert_refused(response: requests.Response, service: PushService, status: int, words: str):
    assert response.status_code == status, response.text
    assert words in response.text
    [(endpoint, recorded_status, reason)] = service.rejected
    assert (recorded_status, reason) == (status, response.text)
    assert service.received == []


# -- subscriptions ---------------------------------------------------------------------------


def test_a_subscription_is_what_push_subscription_to_json_gives(push_service):
    subscription = push_service.subscribe()
    data = subscription.as_json()

    assert data == {
        "endpoint": subscription.endpoint,
        "expirationTime": None,
        "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
    }
    assert subscription.endpoint.startswith(f"http://127.0.0.1:{push_service.port}/push/")
    point = b64url_decode(data["keys"]["p256dh"])
    assert len(point) == 65 and point[0] == 4
    assert len(b64url_decode(data["keys"]["auth"])) == 16
    assert "=" not in data["keys"]["p256dh"] + data["keys"]["auth"]
    other = push_service.subscribe()
    assert (other.endpoint, other.p256dh, other.auth) != (
        subscription.endpoint,
        subscription.p256dh,
        subscription.auth,
    )


# -- accepted ----------------------------------------------------------------------------------


def test_a_message_sent_as_an_application_server_does_is_accepted_and_decrypted(
    push_service, vapid, session
):
    subscription = push_service.subscribe()
    headers = {**headers_for(push_service, vapid), "Urgency": "high", "Topic": "inbox-7"}

    response = post(session, subscription, encrypt(subscription, PAYLOAD), headers)

    assert response.status_code == 201, response.text
    assert response.headers["Location"].startswith(f"{push_service.origin}/message/")
    [message] = push_service.wait_for(1)
    assert message.payload == PAYLOAD
    assert message.json() == {"title": "Hello", "body": "A push, decrypted"}
    assert (message.subscription_id, message.endpoint) == (subscription.id, subscription.endpoint)
    assert (message.ttl, message.urgency, message.topic) == (60, "high", "inbox-7")
    assert message.headers["content-encoding"] == "aes128gcm"
    assert message.vapid_public_key == vapid_key(vapid)
    assert message.jwt_claims["aud"] == push_service.origin
    assert message.jwt_claims["sub"] == "mailto:push@example.com"
    assert push_service.rejected == []


def test_the_vapid_parameters_are_read_with_or_without_the_space(push_service, vapid, session):
    subscription = push_service.subscribe()
    for separator in (",", ", "):
        headers = headers_for(push_service, vapid)
        headers["Authorization"] = headers["Authorization"].replace(",k=", f"{separator}k=")
        response = post(session, subscription, encrypt(subscription, PAYLOAD), headers)
        assert response.status_code == 201, response.text
    assert len(push_service.wait_for(2)) == 2


def test_many_senders_at_once_are_all_received(push_service, vapid):
    subscriptions = [push_service.subscribe() for _ in range(20)]
    headers = headers_for(push_service, vapid)

    def send(index: int) -> int:
        body = encrypt(subscriptions[index], b'{"n": %d}' % index)
        return requests.post(subscriptions[index].endpoint, data=body, headers=headers).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, range(20))) == {201}
    messages = push_service.wait_for(20)
    assert {message.endpoint: message.json()["n"] for message in messages} == {
        subscription.endpoint: index for index, subscription in enumerate(subscriptions)
    }


def test_the_expected_vapid_key_is_taken_and_another_is_forbidden(vapid, session):
    other = Vapid02()
    other.generate_keys()
    with PushService(expected_vapid_key=vapid_key(vapid)) as service:
        subscription = service.subscribe()
        good = post(
            session, subscription, encrypt(subscription, PAYLOAD), headers_for(service, vapid)
        )
        bad = post(
            session, subscription, encrypt(subscription, PAYLOAD), headers_for(service, other)
        )

        assert good.status_code == 201
        assert bad.status_code == 403 and "not the expected" in bad.text
        assert len(service.received) == 1


# -- refused -----------------------------------------------------------------------------------


def test_a_wrong_auth_secret_is_undecryptable(push_service, vapid, session):
    subscription = push_service.subscribe()
    body = http_ece.encrypt(
        PAYLOAD,
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=subscription.public_key,
        auth_secret=bytes(16),
        version="aes128gcm",
    )

    response = post(session, subscription, body, headers_for(push_service, vapid))

    assert_refused(response, push_service, 400, "the AES-GCM tag does not verify")


def test_a_tampered_body_is_undecryptable(push_service, vapid, session):
    subscription = push_service.subscribe()
    body = bytearray(encrypt(subscription, PAYLOAD))
    body[-20] ^= 1

    response = post(session, subscription, bytes(body), headers_for(push_service, vapid))

    assert_refused(response, push_service, 400, "the AES-GCM tag does not verify")


def test_a_message_in_several_records_is_refused_though_it_decrypts(push_service, vapid, session):
    """RFC 8291 wants one record; RFC 8188's records are still read right, rs by rs."""
    subscription = push_service.subscribe()
    body = encrypt(subscription, PAYLOAD, rs=32)  # 15 octets of plaintext per record

    response = post(session, subscription, body, headers_for(push_service, vapid))

    assert_refused(response, push_service, 400, "single record")
    assert decrypt(body, subscription.private_key, subscription.auth_secret) == PAYLOAD


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"aud": "https://push.example.net"}, "JWT aud 'https://push.example.net'"),
        ({"aud": "http://127.0.0.1:1"}, "the push resource's origin is"),
        ({"exp": int(time.time()) - 60}, "JWT expired"),
        ({"exp": int(time.time()) + 25 * 3600}, "24 h at most"),
        ({"sub": "https://example.com"}, None),  # accepted: an https: contact is fine
    ],
)
def test_the_jwt_claims_are_checked(push_service, vapid, session, claims, words):
    subscription = push_service.subscribe()
    headers = headers_for(push_service, vapid, **claims)

    response = post(session, subscription, encrypt(subscription, PAYLOAD), headers)

    if words is None:
        assert response.status_code == 201, response.text
    else:
        assert_refused(response, push_service, 401, words)


def test_a_sub_that_is_no_contact_uri_is_refused():
    token = sign_jwt({"aud": "http://a.test", "exp": time.time() + 60, "sub": "admin"})
    with pytest.raises(Refused, match="mailto: or https: URI"):
        check_vapid(token, "http://a.test")


def test_a_signature_by_another_key_does_not_verify(push_service, vapid, session):
    subscription = push_service.subscribe()
    other = Vapid02()
    other.generate_keys()
    headers = headers_for(push_service, other)
    token = headers["Authorization"].split("t=", 1)[1].split(",", 1)[0]
    headers["Authorization"] = f"vapid t={token}, k={vapid_key(vapid)}"

    response = post(session, subscription, encrypt(subscription, PAYLOAD), headers)

    assert_refused(response, push_service, 401, "JWT signature does not verify with k")


def sign_jwt(
    claims: dict[str, Any],
    *,
    header: dict[str, Any] | None = None,
    der: bool = False,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> str:
    """An Authorization header signed here, to make the mistakes py_vapid does not make."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    signing_input = ".".join(
        b64url_encode(json.dumps(part).encode())
        for part in (header or {"typ": "JWT", "alg": "ES256"}, claims)
    )
    signature = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    if not der:
        r, s = decode_dss_signature(signature)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    public = b64url_encode(public_bytes(key))
    return f"vapid t={signing_input}.{b64url_encode(signature)}, k={public}"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"der": True}, "not DER"),
        ({"header": {"typ": "JWT", "alg": "HS256"}}, "JWT header"),
        ({"header": {"alg": "none"}}, "JWT header"),
    ],
)
def test_a_jwt_not_signed_as_es256_wants_is_refused(push_service, session, options, words):
    subscription = push_service.subscribe()
    claims = {"aud": push_service.origin, "exp": int(time.time()) + 600, "sub": "mailto:a@b.c"}
    headers = {"Authorization": sign_jwt(claims, **options), "Content-Encoding": "aes128gcm"}
    headers["TTL"] = "0"

    response = post(session, subscription, encrypt(subscription, PAYLOAD), headers)

    assert_refused(response, push_service, 401, words)


def test_a_jwt_signed_here_is_accepted_too(push_service, session):
    """The control of the test above: the same hand-made header, done right, passes."""
    subscription = push_service.subscribe()
    claims = {"aud": push_service.origin, "exp": int(time.time()) + 600, "sub": "mailto:a@b.c"}
    headers = {"Authorization": sign_jwt(claims), "Content-Encoding": "aes128gcm", "TTL": "0"}

    response = post(session, subscription, encrypt(subscription, PAYLOAD), headers)

    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"TTL": None}, 400, "no TTL header"),
        ({"TTL": "-1"}, 400, "non-negative integer"),
        ({"TTL": "soon"}, 400, "non-negative integer"),
        ({"Content-Encoding": None}, 400, "Content-Encoding None"),
        ({"Content-Encoding": "aesgcm"}, 400, "wants aes128gcm"),
        ({"Urgency": "urgent"}, 400, "Urgency 'urgent'"),
        ({"Topic": "x" * 33}, 400, "1 to 32 base64url"),
        ({"Topic": "new+mail"}, 400, "1 to 32 base64url"),
        ({"Authorization": None}, 401, "no Authorization"),
        ({"Authorization": "WebPush eyJ0eXAiOiJKV1QifQ.e30.sig"}, 401, "scheme 'WebPush'"),
        ({"Authorization": "vapid k=BAAA"}, 401, "lacks t="),
        ({"Authorization": "Bearer abc"}, 401, "scheme 'Bearer'"),
    ],
)
def test_each_header_is_checked(push_service, vapid, session, change, status, words):
    subscription = push_service.subscribe()
    headers = headers_for(push_service, vapid)
    for name, value in change.items():
        headers.pop(name, None)
        if value is not None:
            headers[name] = value

    response = post(session, subscription, encrypt(subscription, PAYLOAD), headers)

    assert_refused(response, push_service, status, words)


def test_a_body_over_4096_octets_is_too_large(push_service, vapid, session):
    subscription = push_service.subscribe()
    largest = encrypt(subscription, b"x" * 3993)  # 86 of header, 3993 + 1 delimiter, 16 of tag
    body = encrypt(subscription, b"x" * 3994)
    assert (len(largest), len(body)) == (4096, 4097)

    assert post(session, subscription, largest, headers_for(push_service, vapid)).ok
    response = post(session, subscription, body, headers_for(push_service, vapid))

    assert response.status_code == 413 and "over RFC 8030's 4096" in response.text
    assert [status for _, status, _ in push_service.rejected] == [413]


def test_an_unknown_subscription_is_not_found(push_service, vapid, session):
    subscription = push_service.subscribe()
    response = session.post(
        f"{push_service.origin}/push/nobody",
        data=encrypt(subscription, PAYLOAD),
        headers=headers_for(push_service, vapid),
        timeout=5,
    )
    assert_refused(response, push_service, 404, "unknown subscription 'nobody'")


# -- scripted answers and timing ---------------------------------------------------------------


def test_a_gone_subscription_answers_410_every_time(push_service, vapid, session):
    subscription = push_service.subscribe()
    push_service.respond(subscription, 410)

    statuses = [
        post(
            session, subscription, encrypt(subscription, PAYLOAD), headers_for(push_service, vapid)
        ).status_code
        for _ in range(3)
    ]

    assert statuses == [410, 410, 410]
    assert push_service.received == [] and push_service.rejected == []
    assert [(item.endpoint, item.status) for item in push_service.scripted] == [
        (subscription.endpoint, 410)
    ] * 3
    assert push_service.scripted[0].message.payload == PAYLOAD


def test_scripted_answers_queue_up_then_201_again(push_service, vapid, session):
    subscription = push_service.subscribe()
    push_service.respond(subscription.endpoint, 429, times=2, headers={"Retry-After": "3"})
    push_service.respond(subscription, 503, times=1)

    responses = [
        post(
            session, subscription, encrypt(subscription, PAYLOAD), headers_for(push_service, vapid)
        )
        for _ in range(4)
    ]

    assert [response.status_code for response in responses] == [429, 429, 503, 201]
    assert responses[0].headers["Retry-After"] == "3"
    assert len(push_service.wait_for(1)) == 1


def test_an_invalid_message_is_refused_before_any_scripted_answer(push_service, vapid, session):
    subscription = push_service.subscribe()
    push_service.respond(subscription, 410, times=1)
    headers = {**headers_for(push_service, vapid), "TTL": "x"}

    assert post(session, subscription, encrypt(subscription, PAYLOAD), headers).status_code == 400
    assert push_service.scripted == []


def test_wait_for_says_what_arrived_and_what_was_refused(push_service, vapid, session):
    subscription = push_service.subscribe()
    headers = {**headers_for(push_service, vapid), "Content-Encoding": "aesgcm"}
    post(session, subscription, encrypt(subscription, PAYLOAD), headers)

    with pytest.raises(AssertionError, match=r"0 of 1 push messages.*wants aes128gcm"):
        push_service.wait_for(1, timeout=0.05)


def test_a_delay_slows_every_answer(push_service, vapid, session):
    subscription = push_service.subscribe()
    push_service.delay = 0.2
    body, headers = encrypt(subscription, PAYLOAD), headers_for(push_service, vapid)

    started = time.monotonic()
    assert post(session, subscription, body, headers).status_code == 201
    assert time.monotonic() - started >= 0.2


# -- RFC 8291's example ------------------------------------------------------------------------


def rfc8291_ua_key() -> ec.EllipticCurvePrivateKey:
    key = ec.derive_private_key(
        int.from_bytes(b64url_decode(RFC8291_UA_PRIVATE), "big"), ec.SECP256R1()
    )
    assert b64url_encode(public_bytes(key)) == RFC8291_UA_PUBLIC
    return key


def test_rfc8291_example_decrypts_to_the_watermelon():
    body = b64url_decode(RFC8291_MESSAGE)

    assert decrypt(body, rfc8291_ua_key(), b64url_decode(RFC8291_AUTH)) == WATERMELON


def test_rfc8291_example_is_accepted_over_http(push_service, vapid, session):
    subscription = push_service.subscribe(
        private_key=rfc8291_ua_key(), auth_secret=b64url_decode(RFC8291_AUTH)
    )
    assert subscription.p256dh == RFC8291_UA_PUBLIC

    body = b64url_decode(RFC8291_MESSAGE)
    response = post(session, subscription, body, headers_for(push_service, vapid))

    assert response.status_code == 201, response.text
    assert push_service.wait_for(1)[0].payload == WATERMELON


def test_rfc8291_example_with_another_auth_secret_does_not_decrypt():
    body = b64url_decode(RFC8291_MESSAGE)
    with pytest.raises(ValueError, match="tag does not verify"):
        decrypt(body, rfc8291_ua_key(), base64.b64decode("A" * 22 + "=="))
