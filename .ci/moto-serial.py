"""moto on loopback, answering one request at a time.

moto's DynamoDB rolls a cancelled transaction back by restoring a copy of the whole table taken
when the transaction began; with requests served in parallel that copy can undo a concurrent
transaction that committed meanwhile. Real DynamoDB transactions are serializable, so the tests
run against a moto that serves requests one after another.

It also answers GET /sales-agent-test/ses-messages with the raw emails SES accepted (source,
destinations, raw_data), which moto's own /moto-api/data.json only gives with every other model
of every service: tens of megabytes after a test run, serialised while every other request waits.

Usage: python moto-serial.py HOST PORT
"""

import json
import sys

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

SES_MESSAGES = "/sales-agent-test/ses-messages"


def ses_messages():
    from moto.ses import ses_backends

    messages = []
    for region, backend in ses_backends[DEFAULT_ACCOUNT_ID].items():
        for message in backend.sent_messages:
            if hasattr(message, "raw_data"):
                messages.append({"source": message.source, "destinations": message.destinations, "raw_data": message.raw_data})
    return messages


def with_test_routes(app):
    def serve(environ, start_response):
        if environ.get("PATH_INFO") == SES_MESSAGES:
            body = json.dumps(ses_messages()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return serve


if __name__ == "__main__":
    app = with_test_routes(DomainDispatcherApplication(create_backend_app))
    run_simple(sys.argv[1], int(sys.argv[2]), app, threaded=False, use_reloader=False)
