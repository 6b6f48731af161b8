"""moto on loopback, answering one request at a time.

moto's DynamoDB rolls a cancelled transaction back by restoring a copy of the whole table taken
when the transaction began; with requests served in parallel that copy can undo a concurrent
transaction that committed meanwhile. Real DynamoDB transactions are serializable, so the tests
run against a moto that serves requests one after another.

Usage: python moto-serial.py HOST PORT
"""

import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

if __name__ == "__main__":
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(sys.argv[1], int(sys.argv[2]), app, threaded=False, use_reloader=False)
