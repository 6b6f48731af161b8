"""An authoritative DNS server on loopback for the mail-domain tests (dnslib), so no test ever
asks a resolver outside this machine. It serves a fixed set of names:

  accepts.example        MX 10 mx.accepts.example        (a domain that takes mail)
  a-only.example         A 127.0.0.1                     (no MX: the A record is the implicit MX)
  null-mx.example        MX 0 .                          (RFC 7505: accepts no mail)
  no-mail.example        TXT only                        (exists, but no MX and no address)
  servfail.example       SERVFAIL                        (the check cannot be made for now)
  northwind.example      TXT v=spf1 …, _dmarc TXT v=DMARC1; p=quarantine
  nodmarc.example        TXT v=spf1 … and no DMARC record
  twospf.example         two v=spf1 records (a permanent error for SPF checkers)
  loopback.example       A 127.0.0.1                     (research must refuse: loopback)
  metadata.example       A 169.254.169.254               (research must refuse: link-local, cloud metadata)
  intranet.example       A 10.0.0.7                      (research must refuse: private)
  mapped.example         AAAA ::ffff:127.0.0.1           (research must refuse: loopback behind IPv6)
  anything else          NXDOMAIN

usage: dns-server.py HOST PORT
"""

import sys
import threading

from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A
from dnslib.server import BaseResolver, DNSServer

HOST, PORT = sys.argv[1], int(sys.argv[2])
SPF = "v=spf1 include:_spf.google.com ~all"
ZONE = {
    "accepts.example.": [(QTYPE.MX, MX("mx.accepts.example.", 10))],
    "mx.accepts.example.": [(QTYPE.A, A("127.0.0.1"))],
    "a-only.example.": [(QTYPE.A, A("127.0.0.1"))],
    "null-mx.example.": [(QTYPE.MX, MX(".", 0))],
    "no-mail.example.": [(QTYPE.TXT, TXT("just a name"))],
    "northwind.example.": [(QTYPE.TXT, TXT(SPF)), (QTYPE.MX, MX("mx.accepts.example.", 10))],
    "_dmarc.northwind.example.": [(QTYPE.TXT, TXT("v=DMARC1; p=quarantine; rua=mailto:dmarc@northwind.example"))],
    "nodmarc.example.": [(QTYPE.TXT, TXT(SPF))],
    "twospf.example.": [(QTYPE.TXT, TXT(SPF)), (QTYPE.TXT, TXT("v=spf1 -all"))],
    "loopback.example.": [(QTYPE.A, A("127.0.0.1"))],
    "metadata.example.": [(QTYPE.A, A("169.254.169.254"))],
    "intranet.example.": [(QTYPE.A, A("10.0.0.7"))],
    "mapped.example.": [(QTYPE.AAAA, AAAA("::ffff:7f00:1"))],
}


class Zone(BaseResolver):
    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower()
        if name == "servfail.example.":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        records = ZONE.get(name)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for qtype, data in records:
            if qtype == request.q.qtype:
                reply.add_answer(RR(request.q.qname, qtype, rdata=data, ttl=60))
        return reply


server = DNSServer(Zone(), port=PORT, address=HOST)
server.start_thread()
print(f"listening on {HOST}:{PORT}", flush=True)
threading.Event().wait()
