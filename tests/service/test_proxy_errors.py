"""What HAProxy answers by itself, read from the installed Ray: the README's "Operating it"
table says the same, and this fails when a Ray upgrade changes it.

Ray 2.60 writes HAProxy's configuration itself and offers no setting for error files: 502, 503
and 504 share one file Serve writes (a plain-text 500); every other status HAProxy makes (400
for a header past its buffer, 408) is HAProxy's built-in HTML page. The live 400 is checked in
tests/service/test_operations.py.
"""

import inspect
import re

from ray.serve._private import haproxy, haproxy_templates

from serve_app.service.logs import LOGGER_NAME


def test_502_503_and_504_become_serves_plain_text_500() -> None:
    errorfiles = re.findall(
        r"errorfile (\d+) \{\{ config.error_file_path \}\}",
        haproxy_templates.HAPROXY_CONFIG_TEMPLATE,
    )
    assert errorfiles == ["502", "503", "504"]
    source = inspect.getsource(haproxy.HAProxyApi._initialize_directories_and_error_files)
    assert "HTTP/1.1 500 Internal Server Error" in source
    assert "Content-Type: text/plain" in source


def test_no_setting_adds_error_files_for_other_statuses() -> None:
    template = haproxy_templates.HAPROXY_CONFIG_TEMPLATE
    assert "custom_defaults" not in template and "custom_global" not in template
    assert len(re.findall(r"^\s*errorfile ", template, re.M)) == 3


def test_header_buffer_and_timeouts_are_the_documented_defaults() -> None:
    config = haproxy.HAProxyConfig()
    assert config.bufsize == 16384  # a request head past it: HAProxy's HTML 400
    assert config.timeout_client_s == 3600
    assert config.timeout_server_s is None  # no server timeout: long batch streams stay up
    assert config.timeout_http_request_s is None


def test_our_lines_go_through_serves_logger() -> None:
    # Serve's replica log file and its JSON encoding apply to children of "ray.serve".
    assert LOGGER_NAME.startswith("ray.serve.")
