"""`cleanserve loadtest`: Locust against the service, replica sampling, thresholds, report.

Needs the `loadtest` extra (`pip install "cleanserve[loadtest]"`). The locustfile and its
siblings run in Locust's gevent-patched process, so they import neither Ray nor the service.
"""
