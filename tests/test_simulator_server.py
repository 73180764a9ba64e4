"""The simulator over real loopback sockets: HTTP and WebSocket on one port, faults, limits."""

from __future__ import annotations

import base64
import json
import ssl
from functools import partial

import pytest
import trio
import trio.testing
import trio_websocket
from http_client import http_request
from ws_client import LoxoneTestClient, open_client
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request

from loxone_trio_exporter.protocol import (
    HashAlgorithm,
    KeepaliveReceived,
    MessageReader,
    OutOfService,
    RemoteProtocolError,
    ValueStatesReceived,
    credential_hash,
    getjwt_command,
    load_public_key,
    parse_api_key_value,
    parse_getkey2_value,
    parse_header,
    parse_ll_reply,
    parse_token_value,
    uuid_to_str,
)
from loxone_trio_exporter.simulator import (
    SimulatorOptions,
    User,
    serve_simulator,
)
from loxone_trio_exporter.simulator._websocket import WebSocketClient, _RawEvent

USERS = (
    User("sha256user", "correct horse", HashAlgorithm.SHA256),
    User("sha1user", "battery staple", HashAlgorithm.SHA1),
)


async def start(nursery, **overrides):
    settings = {"port": 0, "controls": 20, "users": USERS, "rate": 500.0, "seed": 7}
    options = SimulatorOptions(**(settings | overrides))
    handle = await nursery.start(serve_simulator, options)
    return handle.servers[0]


async def public_key(port: int) -> str:
    response = await http_request(port, "/jdev/sys/getPublicKey")
    return parse_ll_reply(response.body).value


async def logged_in(client: LoxoneTestClient, port: int, user: User = USERS[0]):
    assert (await client.key_exchange(await public_key(port))).ok
    reply, token = await client.get_token(user.name, user.password)
    assert reply.ok, reply
    return token


async def close_reason(client: LoxoneTestClient, *, decode: bool = False):
    """Read until the server closes; the close reason, and every event decoded meanwhile."""
    events = []
    try:
        while True:
            if decode:
                events.append(await client.next_event())
            else:
                await client.ws.get_message()
    except trio_websocket.ConnectionClosed as closed:
        return closed.reason, events


async def stream_updates(client: LoxoneTestClient) -> None:
    assert (await client.request("jdev/sps/enablebinstatusupdate")).ok


# --- HTTP ----------------------------------------------------------------------------------------


async def test_api_key_public_key_and_structure_over_http(nursery):
    server = await start(nursery)
    api = await http_request(server.port, "/jdev/cfg/apiKey")
    assert api.status == 200
    reply = parse_ll_reply(api.body)
    assert reply.answers("jdev/cfg/apiKey")
    assert "'" in reply.value  # the single-quoted pseudo-JSON of a real Miniserver
    info = parse_api_key_value(reply.value)
    assert info.version.count(".") == 3
    assert info.has_event_slots is True
    assert info.https_status is None  # no TLS
    assert info.serial.replace(":", "") == server.model.serial.upper()

    key = await http_request(server.port, "/jdev/sys/getPublicKey")
    assert key.headers["content-type"] == "application/json"
    value = parse_ll_reply(key.body).value
    assert value.startswith("-----BEGIN CERTIFICATE-----")
    assert "\n" not in value
    assert load_public_key(value).key_size == 2048

    refused = await http_request(server.port, "/data/LoxAPP3.json")
    assert refused.status == 401
    assert "Basic" in refused.headers["www-authenticate"]
    basic = base64.b64encode(b"sha1user:battery staple").decode()
    structure = await http_request(
        server.port, "/data/LoxAPP3.json", headers=[("Authorization", f"Basic {basic}")]
    )
    assert structure.status == 200
    assert structure.json()["lastModified"] == server.model.last_modified
    wrong = base64.b64encode(b"sha1user:wrong").decode()
    denied = await http_request(
        server.port, "/data/LoxAPP3.json", headers=[("Authorization", f"Basic {wrong}")]
    )
    assert denied.status == 401


async def test_unknown_paths_and_methods(nursery):
    server = await start(nursery)
    assert (await http_request(server.port, "/jdev/nothing/here")).status == 404
    assert (await http_request(server.port, "/jdev/cfg/apiKey", method="POST")).status == 405
    assert (await http_request(server.port, "/sim/nothing")).status == 404


async def test_malformed_http_gets_400_and_the_server_lives_on(nursery):
    server = await start(nursery)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        await stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")
        answer = await stream.receive_some(1000)
    assert answer.startswith(b"HTTP/1.1 400")
    assert (await http_request(server.port, "/jdev/cfg/apiKey")).status == 200


# --- WebSocket logins ----------------------------------------------------------------------------


@pytest.mark.parametrize("user", USERS, ids=lambda u: u.hash_algorithm.value)
async def test_full_session_for_sha1_and_sha256_users(nursery, user):
    server = await start(nursery)
    async with open_client(server.port) as client:
        assert client.ws.subprotocol == "remotecontrol"
        token = await logged_in(client, server.port, user)
        assert client.hash_algorithm is user.hash_algorithm
        assert token is not None
        assert token.token
        assert token.token_rights
        version = await client.request("jdev/sps/LoxAPPversion3")
        assert version.value == server.model.last_modified
        await client.ws.send_message("data/LoxAPP3.json")
        file_event = await client.next_event()
        assert json.loads(file_event.content)["lastModified"] == server.model.last_modified
        await stream_updates(client)
        tables = [await client.next_event() for _ in range(4)]
        values = {uuid_to_str(u): v for u, v in tables[0].states}
        snapshot = server.model.values_snapshot()["values"]
        assert values.keys() == snapshot.keys()
        # Changes keep coming, batched, at the configured rate.
        update = await client.next_event()
        while not isinstance(update, ValueStatesReceived):
            update = await client.next_event()
        assert update.states
        await client.ws.send_message("keepalive")
        event = await client.next_event()
        while not isinstance(event, KeepaliveReceived):
            event = await client.next_event()
    assert server.stats()["logins_ok"] == 1


async def test_clients_without_the_subprotocol_are_accepted(nursery):
    server = await start(nursery)
    async with open_client(server.port, subprotocols=[]) as client:
        assert client.ws.subprotocol is None
        await logged_in(client, server.port)


async def test_token_reuse_on_a_new_connection(nursery):
    server = await start(nursery)
    async with open_client(server.port) as client:
        token = await logged_in(client, server.port)
    async with open_client(server.port) as client:
        await client.key_exchange(await public_key(server.port))
        assert (await client.auth_with_token(USERS[0].name, token.token)).ok
        assert (await client.request("jdev/sps/LoxAPPversion3")).ok


async def test_command_before_authentication_is_400(nursery):
    server = await start(nursery)
    async with open_client(server.port) as client:
        reply = await client.request("jdev/sps/LoxAPPversion3")
        assert reply.code == 400


# --- faults --------------------------------------------------------------------------------------


async def post_fault(port: int, **fault) -> dict:
    body = json.dumps(fault).encode()
    response = await http_request(port, "/sim/fault", method="POST", body=body)
    assert response.status == 200, response.body
    return response.json()


async def test_bad_fault_requests_say_what_to_send(nursery):
    server = await start(nursery)
    for body, message in [
        (b"not json", ""),
        (b'{"kind": "explode"}', "known kinds: drop"),
        (b'{"kind": "close", "code": 1234}', "not one a Miniserver uses"),
        (b'{"kind": "stall", "seconds": -1}', "non-negative"),
        (b'{"kind": "auth_fail", "count": "x"}', "must be a number"),
        (b'{"kind": "estimated_headers", "enabled": "yes"}', "true or false"),
    ]:
        response = await http_request(server.port, "/sim/fault", method="POST", body=body)
        assert response.status == 400
        assert message in response.json()["error"]


async def test_drop_cuts_without_a_close_frame(nursery):
    server = await start(nursery)
    async with open_client(server.port) as client:
        await logged_in(client, server.port)
        await post_fault(server.port, kind="drop")
        reason, _ = await close_reason(client)
        assert reason.code == 1006  # abnormal: no close frame was received


async def test_out_of_service_sends_header_5_then_closes(nursery):
    server = await start(nursery)
    async with open_client(server.port) as client:
        await logged_in(client, server.port)
        await post_fault(server.port, kind="out_of_service")
        reason, events = await close_reason(client, decode=True)
        assert isinstance(events[-1], OutOfService)
        assert reason.code == 1000


@pytest.mark.parametrize("code", [4003, 4004, 4005, 4006, 4007, 4008])
async def test_close_codes(nursery, code):
    server = await start(nursery)
    async with open_client(server.port) as client:
        await logged_in(client, server.port)
        await post_fault(server.port, kind="close", code=code, seconds=42)
        reason, _ = await close_reason(client)
        assert reason.code == code
        if code == 4003:
            assert "(42)" in reason.reason


async def test_garbage_is_a_message_no_reader_accepts(nursery):
    server = await start(nursery)
    async with open_client(server.port) as client:
        await logged_in(client, server.port)
        await post_fault(server.port, kind="garbage")
        with pytest.raises(RemoteProtocolError, match="unknown message identifier"):  # noqa: PT012
            while True:
                await client.next_event()


async def test_auth_fail_refuses_the_next_logins(nursery):
    server = await start(nursery)
    await post_fault(server.port, kind="auth_fail", count=2)
    for _ in range(2):
        async with open_client(server.port) as client:
            await client.key_exchange(await public_key(server.port))
            reply, _ = await client.get_token(USERS[0].name, USERS[0].password)
            assert reply.code == 401
    async with open_client(server.port) as client:
        await logged_in(client, server.port)
    stats = (await http_request(server.port, "/sim/stats")).json()
    assert (stats["logins_ok"], stats["logins_failed"]) == (1, 2)


async def test_token_expire_invalidates_issued_tokens(nursery):
    server = await start(nursery)
    async with open_client(server.port) as client:
        token = await logged_in(client, server.port)
    await post_fault(server.port, kind="token_expire")
    async with open_client(server.port) as client:
        await client.key_exchange(await public_key(server.port))
        reply = await client.auth_with_token(USERS[0].name, token.token)
        assert reply.code in (401, 477)


async def test_structure_change_bumps_version_and_closes(nursery):
    server = await start(nursery)
    before = server.model.last_modified
    names_before = {c.name for c in server.model.structure.walk_controls()}
    async with open_client(server.port) as client:
        await logged_in(client, server.port)
        await post_fault(server.port, kind="structure_change")
        _, events = await close_reason(client, decode=True)
        assert isinstance(events[-1], OutOfService)
    assert server.model.last_modified != before
    assert {c.name for c in server.model.structure.walk_controls()} != names_before
    async with open_client(server.port) as client:
        await logged_in(client, server.port)
        version = await client.request("jdev/sps/LoxAPPversion3")
        assert version.value == server.model.last_modified


async def test_boot_answers_503_and_refuses_the_websocket(nursery):
    server = await start(nursery)
    async with open_client(server.port) as client:
        await logged_in(client, server.port)
        await post_fault(server.port, kind="boot", seconds=3600)
        reason, _ = await close_reason(client)
        assert reason.code == 1006  # a reboot cuts the connection
    assert (await http_request(server.port, "/jdev/cfg/apiKey")).status == 503
    rejected_with_503 = pytest.RaisesExc(
        trio_websocket.ConnectionRejected, check=lambda exc: exc.status_code == 503
    )
    with pytest.RaisesGroup(rejected_with_503, flatten_subgroups=True):
        async with open_client(server.port):
            pass
    await post_fault(server.port, kind="clear")
    assert (await http_request(server.port, "/jdev/cfg/apiKey")).status == 200


async def test_quirk_tables_before_ack(nursery):
    server = await start(nursery)
    await post_fault(server.port, kind="tables_before_ack")
    async with open_client(server.port) as client:
        await logged_in(client, server.port)
        reply = await client.request("jdev/sps/enablebinstatusupdate")
        assert reply.ok
        assert [type(e).__name__ for e in client.other_events[:1]] == ["ValueStatesReceived"]


async def test_quirk_estimated_headers(nursery):
    server = await start(nursery)
    await post_fault(server.port, kind="estimated_headers")
    async with open_client(server.port) as client:
        await logged_in(client, server.port)
        await client.ws.send_message("data/LoxAPP3.json")
        raw = [await client.ws.get_message() for _ in range(3)]
    reader = MessageReader()
    assert parse_header(raw[0]).estimated
    assert not parse_header(raw[1]).estimated
    assert reader.receive(raw[0]) is None
    assert reader.receive(raw[1]) is None
    assert json.loads(reader.receive(raw[2]).content)["lastModified"] == server.model.last_modified


# --- limits --------------------------------------------------------------------------------------


async def test_event_slots_are_limited(nursery):
    server = await start(nursery, max_event_clients=2)
    async with open_client(server.port) as first, open_client(server.port) as second:
        for client in (first, second):
            await logged_in(client, server.port)
            await stream_updates(client)
        assert (await http_request(server.port, "/sim/stats")).json()["streaming_clients"] == 2
        api = parse_ll_reply((await http_request(server.port, "/jdev/cfg/apiKey")).body)
        assert parse_api_key_value(api.value).has_event_slots is False
        async with open_client(server.port) as third:
            await logged_in(third, server.port)
            await third.ws.send_message("jdev/sps/enablebinstatusupdate")
            reason, _ = await close_reason(third)
            assert reason.code == 4008


# --- TLS, several Miniservers --------------------------------------------------------------------


async def test_tls_with_a_pinned_certificate(nursery, tmp_path):
    cert = tmp_path / "sim.pem"
    server = await start(nursery, tls=True, tls_cert_file=cert)
    context = ssl.create_default_context(cafile=str(cert))
    api = await http_request(server.port, "/jdev/cfg/apiKey", ssl_context=context)
    assert parse_api_key_value(parse_ll_reply(api.body).value).https_status == 1
    async with open_client(server.port, ssl_context=context) as client:
        key = (
            await http_request(server.port, "/jdev/sys/getPublicKey", ssl_context=context)
        ).json()["LL"]["value"]
        await client.key_exchange(key)
        reply, _ = await client.get_token(USERS[0].name, USERS[0].password, encrypt=False)
        assert reply.ok  # in clear over TLS is allowed
    assert oct(cert.with_suffix(".key").stat().st_mode & 0o777) == "0o600"


async def test_unencrypted_getjwt_over_plain_ws_is_400(nursery):
    server = await start(nursery)
    async with open_client(server.port) as client:
        await client.key_exchange(await public_key(server.port))
        reply, _ = await client.get_token(USERS[0].name, USERS[0].password, encrypt=False)
        assert reply.code == 400


async def test_count_serves_independent_miniservers(nursery):
    options = SimulatorOptions(port=0, controls=15, users=USERS, count=3, seed=1)
    handle = await nursery.start(partial(serve_simulator, options))
    assert len(set(handle.ports)) == 3
    serials = {server.model.serial for server in handle.servers}
    assert len(serials) == 3
    for port in handle.ports:
        assert (await http_request(port, "/jdev/cfg/apiKey")).status == 200


# --- what independent clients rely on (protocol doc 9c) ------------------------------------------


async def test_websocket_path_may_carry_a_cache_buster_query(nursery):
    server = await start(nursery)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with trio.open_nursery() as client_nursery:
        ws = await trio_websocket.wrap_client_stream(
            client_nursery,
            stream,
            "127.0.0.1",
            "/ws/rfc6455?_=1700000000000",
            subprotocols=["remotecontrol"],
        )
        await ws.send_message("keepalive")
        assert isinstance(MessageReader().receive(await ws.get_message()), KeepaliveReceived)
        await ws.aclose()
    await stream.aclose()


async def test_websocket_pings_are_answered(nursery):
    server = await start(nursery)
    async with open_client(server.port) as client:
        with trio.fail_after(5):
            await client.ws.ping(b"are you there")


async def test_token_login_over_http_then_structure_with_bearer(nursery):
    server = await start(nursery)
    user = USERS[1]
    key_response = await http_request(server.port, f"/jdev/sys/getkey2/{user.name}")
    key = parse_getkey2_value(parse_ll_reply(key_response.body).value)
    assert key.hash_algorithm is HashAlgorithm.SHA1
    hashed = credential_hash(user.name, user.password, key.key_hex, key.salt, key.hash_algorithm)
    command = getjwt_command(hashed, user.name, 4, "098802e1-02b4-603c-ffffeee000d80cfd", "http")
    token_response = await http_request(server.port, f"/{command}")
    assert token_response.status == 200
    token = parse_token_value(parse_ll_reply(token_response.body).value)
    structure = await http_request(
        server.port, "/data/LoxAPP3.json", headers=[("Authorization", f"Bearer {token.token}")]
    )
    assert structure.status == 200
    replayed = await http_request(server.port, f"/{command}")  # the one-time key is used up
    assert replayed.status == 401
    assert parse_ll_reply(replayed.body).code == 401


async def test_sim_values_match_the_full_tables(nursery):
    server = await start(nursery, rate=0.0)
    snapshot = (await http_request(server.port, "/sim/values")).json()
    async with open_client(server.port) as client:
        await logged_in(client, server.port)
        await stream_updates(client)
        values_table, texts_table = await client.next_event(), await client.next_event()
    assert {uuid_to_str(u): v for u, v in values_table.states} == snapshot["values"]
    assert {uuid_to_str(s.uuid): s.text for s in texts_table.states} == snapshot["texts"]


async def test_a_real_structure_file_is_served_with_every_numeric_state(nursery, shared_fixture):
    document = json.loads(shared_fixture("smarteon-2025.LoxAPP3.json").read_text("utf-8"))
    server = await start(nursery, structure=document)
    async with open_client(server.port) as client:
        await logged_in(client, server.port)
        await client.ws.send_message("data/LoxAPP3.json")
        served = json.loads((await client.next_event()).content)
        assert served["msInfo"] == document["msInfo"]
        await stream_updates(client)
        values_table = await client.next_event()
    numeric = {uuid_to_str(u) for u, _ in values_table.states}
    index = server.model.state_index
    assert numeric
    assert all(index.owners(u) for u, _ in values_table.states)
    assert numeric == set(server.model.values_snapshot()["values"])


async def test_tables_queued_before_a_client_close_are_dropped_and_the_close_answered(nursery):
    # The reader takes the client's close frame while the writer still holds tables queued
    # before it: the writer must answer the close and drop them (wsproto refuses data then).
    server = await start(nursery)
    client_ws = WSConnection(ConnectionType.CLIENT)
    server_ws = WSConnection(ConnectionType.SERVER)
    server_ws.receive_data(client_ws.send(Request(host="sim", target="/ws/rfc6455")))
    request = next(server_ws.events())
    assert isinstance(request, Request)
    client_ws.receive_data(server_ws.send(AcceptConnection()))
    assert isinstance(next(client_ws.events()), AcceptConnection)
    server_ws.receive_data(client_ws.send(CloseConnection(code=1000, reason="bye")))
    close = next(server_ws.events())
    assert isinstance(close, CloseConnection)

    ours, theirs = trio.testing.memory_stream_pair()
    sim_client = WebSocketClient(server, ours, server_ws)
    finished = await sim_client._write([b"a queued table", _RawEvent(close.response())])
    assert finished
    client_ws.receive_data(await theirs.receive_some())
    assert [type(event) for event in client_ws.events()] == [CloseConnection]
