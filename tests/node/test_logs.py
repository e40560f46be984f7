"""The node's log formats and its rate limit, without a node."""

from __future__ import annotations

import io
import json
import logging

import pytest

from node import logs
from node.config import ConfigError, NodeConfig


@pytest.fixture
def captured():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    logs.configure("info", "json", stream)
    logs.set_context(lambda: {"node": "org1", "height": 7, "view": 2})
    yield stream
    logs.set_context(logs._no_context)
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_json_lines_carry_time_level_node_height_view_event_and_fields(captured) -> None:  # type: ignore[no-untyped-def]
    log = logging.getLogger("vigil.node")
    log.info("refused a transaction from %s", "api", extra={"event": "refused",
             "fields": {"code": "expired"}})  # fmt: skip
    logging.getLogger("vigil.p2p").warning("peer gone")
    first, second = (json.loads(line) for line in captured.getvalue().splitlines())
    assert first["level"] == "info" and first["node"] == "org1"
    assert (first["height"], first["view"]) == (7, 2)
    assert first["event"] == "refused" and first["fields"] == {"code": "expired"}
    assert first["message"] == "refused a transaction from api"
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert second["event"] == "p2p" and second["level"] == "warning"


def test_a_repeated_message_is_held_back_and_counted() -> None:
    now = [0.0]
    limit = logs.RateLimit(clock=lambda: now[0])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.TextFormatter())
    handler.addFilter(limit)
    log = logging.getLogger("vigil.test-rate")
    log.propagate = False
    log.addHandler(handler)
    try:
        for i in range(logs.LOG_BURST + 30):
            log.warning("bad frame from %s", f"peer{i}")
        assert stream.getvalue().count("bad frame from") == logs.LOG_BURST
        log.warning("something else")  # another kind has its own budget
        now[0] += logs.LOG_WINDOW_S
        log.warning("bad frame from %s", "peer-late")
        text = stream.getvalue()
        assert "30 more like 'bad frame from %s' were held back" in text
        assert "something else" in text and "peer-late" in text
    finally:
        log.removeHandler(handler)


def test_text_lines_name_where_the_node_is(captured) -> None:  # type: ignore[no-untyped-def]
    stream = io.StringIO()
    logs.configure("warning", "text", stream)
    logging.getLogger("vigil.node").info("not shown below warning")
    logging.getLogger("vigil.node").warning("halting: %s", "why", extra={"fields": {"at": 7}})
    line = stream.getvalue().strip()
    assert "org1 h=7 v=2 node: halting: why at=7" in line and "not shown" not in line


def test_a_bad_log_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="log_format must be one of text, json"):
        NodeConfig.from_json_obj(
            {"peer_listen": "127.0.0.1:1", "api_listen": "127.0.0.1:2", "log_format": "xml"}, "c"
        )
    with pytest.raises(ValueError, match="log level 'loud'"):
        logs.configure("loud", "text")  # refused before any handler changes


def test_a_request_aiohttp_cannot_read_is_one_info_line_and_a_handler_bug_keeps_its_traceback(
    captured,  # type: ignore[no-untyped-def]
) -> None:
    from aiohttp.http_exceptions import BadHttpMessage

    server = logging.getLogger("aiohttp.server")
    try:
        raise BadHttpMessage("Invalid header value char:\n  b'X: \\x00'")
    except BadHttpMessage:
        server.exception("Error handling request from %s", "127.0.0.1")
    try:
        raise KeyError("a real bug")
    except KeyError:
        server.exception("Error handling request from %s", "127.0.0.1")
    first, second = (json.loads(line) for line in captured.getvalue().splitlines())
    assert first["level"] == "info" and "Invalid header value char" in first["message"]
    assert "Traceback" not in json.dumps(first)
    assert second["level"] == "error" and "KeyError" in json.dumps(second)


def test_the_open_file_limit_is_raised_at_start_up_or_the_shortfall_said() -> None:
    import subprocess
    import sys

    script = (
        "import logging, resource, sys\n"
        "logging.basicConfig(stream=sys.stdout, format='%(levelname)s %(message)s')\n"
        "from node.run import FILES_NEEDED, raise_open_file_limit\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (512, int(sys.argv[1])))\n"
        "print(raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0],"
        " FILES_NEEDED)\n"
    )
    from node.run import FILES_NEEDED

    hard = __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)[1]
    if hard != -1 and hard < FILES_NEEDED:
        pytest.skip(f"this machine's hard limit {hard} is below {FILES_NEEDED}")
    enough = subprocess.run([sys.executable, "-c", script, str(FILES_NEEDED + 10)],
                            capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    assert enough == [str(FILES_NEEDED)] * 3
    short = subprocess.run([sys.executable, "-c", script, "1000"], capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    assert short.splitlines()[-1].split()[:2] == ["1000", "1000"]
    assert "WARNING open-file limit 1000 (hard limit 1000) is below" in short


def test_the_start_up_heap_is_frozen_and_later_garbage_still_collected() -> None:
    """In a child process (freezing is for the whole process): what start-up imported is out
    of the collector's walk, and cycles made afterwards are collected as before, by the
    collector itself at the node's thresholds."""
    import subprocess
    import sys

    script = (
        "import gc, weakref\n"
        "from node.run import freeze_start_up_heap\n"
        "import node.service, node.api, ml.train\n"
        "class Cycle: pass\n"
        "frozen = freeze_start_up_heap()\n"
        "a = Cycle(); a.self = a; alive = weakref.ref(a); del a\n"
        "gc.collect()\n"
        "print(frozen, alive() is None, len(gc.get_objects()) < frozen // 10)\n"
        "from node.run import GC_THRESHOLDS\n"
        "assert gc.get_threshold() == GC_THRESHOLDS\n"
        "live = weakref.WeakSet()\n"
        "for _ in range(1_000_000):  # cycles only the collector frees, no collect() asked\n"
        "    b = Cycle(); b.self = b; live.add(b)\n"
        "print(len(live) < 10 * GC_THRESHOLDS[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    assert int(out[0]) > 50_000 and out[1:] == ["True", "True", "True"], out
